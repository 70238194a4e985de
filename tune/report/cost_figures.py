"""The figures of the report's "What it costs" section (tune/report/cost.py): accuracy against training cost,
serving latency, GFLOPs and size (tune/report/scatter.py's one scatter), and the time-to-accuracy curves."""

from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from tune.analysis.cost import fmt_usd
from tune.analysis.cost_columns import FIRST_RETRAIN
from tune.analysis.row import ComparisonRow
from tune.analysis.stats import pareto_front
from tune.report.cost_table import TARGET, sig
from tune.report.figures import Palette, error_bars, png, short_number
from tune.report.scatter import accuracy_scatter, wide

# Values measured per image for a classifier and per canvas for the detector (jobs/engine/measure/final_evaluation.py).
PER_UNIT = ("latency_ms_p50", "latency_ms_p95", "throughput_per_s", "gflops_per_image", "onnx_latency_ms_p50")
# (anchor, title, comparison column, axis label, what "better" means on the x axis, what the value is called, unit)
SCATTERS = (
    ("cost-latency", "Accuracy against serving latency", "latency_ms_p50",
     "serving latency at batch 1 (ms per image, median)", "faster", "a serving latency", " ms"),
    ("cost-gflops", "Accuracy against compute (GFLOPs)", "gflops_per_image", "forward GFLOPs per image",
     "cheaper to run", "a GFLOPs count", " GFLOPs per image"),
    ("cost-size", "Accuracy against file size (MB)", "model_size_mb", "weights (MB, 10⁶ bytes)", "smaller",
     "a model size", " MB"),
)


@dataclass
class CostFigure:
    """One figure of the section: its PNG (base64, tune/report/figures.py `png`), or a note saying why there is
    none; the models drawn and their point labels."""

    anchor: str
    title: str
    alt: str
    png: str | None = None
    note: str = ""
    caption: str = ""
    models: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def training_cost_figure(ok: list[ComparisonRow], palette: Palette) -> CostFigure:
    """Accuracy against the dollars of search + retrains; resource-seconds when there are no dollars (prices 0)."""
    anchor, title = "cost-training", "Accuracy against training cost"
    if any((r.value("cost_usd") or 0.0) > 0 for r in ok) or not any(r.costs.cpu_s for r in ok):
        return scatter_figure(ok, palette, anchor, title, "cost_usd",
                              "training cost: search + retrains (US dollars)", "cheaper", "a training cost", " $")
    resource = "gpu_s" if any((r.value("gpu_s") or 0.0) > 0 for r in ok) else "cpu_s"
    label = "GPU" if resource == "gpu_s" else "CPU"
    return scatter_figure(ok, palette, anchor, title, resource, f"{label}-seconds held: search + retrains",
                          "cheaper", f"{label}-seconds held", f" {label}-seconds")


def scatter_figure(ok: list[ComparisonRow], palette: Palette, anchor: str, title: str, key: str, xlabel: str,
                   better: str, called: str, unit: str = "") -> CostFigure:
    """Test accuracy against KEY, one point per trained model, the Pareto front (more accurate and lower KEY)
    outlined and joined; a note instead of a chart when fewer than two models have a positive KEY."""
    points = [r for r in ok if (r.value(key) or 0.0) > 0]
    labels = [point_label(r, key) for r in points]
    figure = CostFigure(anchor, title, f"Scatter of mean test accuracy against {xlabel}, one point per model, Pareto "
                        "front outlined", models=[r.model for r in points], labels=labels)
    if len(points) < 2:
        if points:
            only, value = points[0], points[0].value(key) or 0.0
            shown = fmt_usd(value) if unit == " $" else sig(value) + unit
            figure.note = (f"Only {only.model} has {called} ({shown}): a trade-off needs two models, so there is no "
                           "chart.")
        else:
            figure.note = f"No trained model has {called}, so there is no chart."
        return figure
    front = pareto_front({r.model: r.test_accuracy for r in points if r.test_accuracy is not None},
                         {r.model: r.value(key) for r in points if r.value(key) is not None})
    log = wide([r.value(key) or 0.0 for r in points])  # a wide range reads on a log axis; a narrow one on a linear one
    figure.png = png(accuracy_scatter(points, palette, key, xlabel + (", log scale" if log else ""), front, labels,
                                      log))
    per_canvas = [r.model for r, label in zip(points, labels, strict=True) if label != r.model]
    figure.caption = (f"Outlined and joined: the Pareto front, where no other model is both more accurate and "
                      f"{better}: {', '.join(front)}. "
                      + (f"{', '.join(per_canvas)}: per canvas, the others per image. " if per_canvas else "")
                      + error_bars(points))
    return figure


def point_label(row: ComparisonRow, key: str) -> str:
    """A scatter point's label: the model, and "(per canvas)" for the detector where KEY is measured per canvas, as
    the table's ‡ says."""
    return row.model + (" (per canvas)" if key in PER_UNIT and row.detector else "")


def time_to_accuracy_figure(ok: list[ComparisonRow], palette: Palette) -> CostFigure:
    """Validation accuracy (a detector: mAP@0.5) against cumulative training seconds, one line per architecture,
    from the history the time-to-target columns use; 99% drawn as a dotted line."""
    figure = CostFigure("time-to-accuracy", "Time to accuracy",
                        "Line chart of validation accuracy against cumulative training seconds, one line per model")
    curves = [(r.model, r.costs.timed, curve) for r in ok if (curve := r.costs.timed.curve())]
    figure.models = [model for model, _, _ in curves]
    if not curves:
        figure.note = "No trained model kept a per-epoch history with its epoch times, so there is no chart."
        return figure
    fig = Figure(figsize=(7.2, 3.9), layout="constrained")
    ax = fig.add_subplot()
    for model, timed, curve in curves:
        xs, ys = zip(*curve, strict=True)
        label = model + (" (mAP@.5)" if timed.detection else "") + (" †" if timed.source == FIRST_RETRAIN else "")
        ax.plot(xs, [y * 100 for y in ys], marker="o", ms=5, color=palette.get(model, "grey"), label=label)
    ax.axhline(TARGET * 100, ls=":", color="#444", lw=1, zorder=1)
    ax.annotate("99%", (1, TARGET * 100), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                textcoords="offset points", ha="right", fontsize=8, color="#444")
    if wide([x for _, _, curve in curves for x, _ in curve]):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(short_number))
    ax.set_xlabel("cumulative training seconds" + (" (log scale)" if ax.get_xscale() == "log" else ""))
    detector = any(timed.detection for _, timed, _ in curves)
    ax.set_ylabel("validation accuracy (%)" + (" or mAP@.5" if detector else ""))
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.png = png(fig)
    single = all(len(curve) == 1 for _, _, curve in curves)
    retrained = any(timed.source == FIRST_RETRAIN for _, timed, _ in curves)
    figure.caption = (
        ("Each architecture's history has one epoch, so each is one point: its validation accuracy after that "
         "epoch's training seconds. " if single else "") +
        "From the history of each architecture's best search trial (the chosen configuration, on held-out "
        "validation data)" +
        ("; † marks the first retrain's, used where no trial kept one (optimistic: it trains on train+validation)"
         if retrained else "") +
        ". Seconds are training time only, summed epoch by epoch; the dotted line is 99%.")
    return figure
