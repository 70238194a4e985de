"""`make dashboard` (jobs/dashboard.py) shows each sweep's trials once: TensorBoard's own loader, given what the
command gives it, finds each run of the sweeps once, where `--logdir OUTPUT` found the newest sweep's twice."""

import pytest
from tensorboard.backend.event_processing.data_ingester import _parse_event_files_spec
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from jobs.dashboard import logdir_spec, main
from jobs.engine.errors import UsageError
from tests.cli import assert_usage_error, run_in_process


def write_runs(output, *sweeps):
    """Two trials' event files in each sweep's tune/ (what Tune's TBXLoggerCallback writes), `latest` at the last."""
    for sweep in sweeps:
        for trial in ("trial_0", "trial_1"):
            writer = EventFileWriter(str(output / sweep / "tune" / trial))
            value = summary_pb2.Summary.Value(tag="val_acc", simple_value=0.9)
            writer.add_event(event_pb2.Event(step=0, summary=summary_pb2.Summary(value=[value])))
            writer.close()
    (output / "latest").symlink_to(sweeps[-1], target_is_directory=True)  # as the sweep points it


def runs(multiplexer_input: dict[str, str | None]) -> list[str]:
    """The runs TensorBoard's multiplexer loads from {path: name}, as its data ingester adds them."""
    multiplexer = EventMultiplexer()
    for path, name in multiplexer_input.items():
        multiplexer.AddRunsFromDirectory(path, name)
    return sorted(multiplexer.Runs())


def test_each_trial_once_and_never_through_latest(tmp_path):
    write_runs(tmp_path, "sweep-a", "sweep-b")
    (tmp_path / "best").symlink_to("sweep-a", target_is_directory=True)  # any link, not only `latest`
    (tmp_path / ".hidden").mkdir()
    # The bug, with TensorBoard's own loader: the newest sweep's trials twice.
    assert runs({str(tmp_path): None}) == sorted(
        f"{sweep}/tune/trial_{i}" for sweep in ("best", "latest", "sweep-a", "sweep-b") for i in (0, 1))
    spec = logdir_spec(tmp_path)
    assert [entry.split(":", 1)[0] for entry in spec.split(",")] == ["sweep-a", "sweep-b"]
    assert runs(_parse_event_files_spec(spec)) == sorted(
        f"{sweep}/tune/trial_{i}" for sweep in ("sweep-a", "sweep-b") for i in (0, 1))


@pytest.mark.parametrize(("case", "fragment"), [
    ("missing", "no such folder"),
    ("empty", "no sweep or run folder"),
    ("comma", "cannot carry a ','"),
])
def test_what_tensorboard_cannot_be_given_is_refused(tmp_path, case, fragment):
    output = tmp_path / "results"
    if case != "missing":
        output.mkdir()
        (output / "latest").symlink_to(tmp_path)  # a link alone is no sweep
    if case == "comma":
        (output / "sweep,a").mkdir()
    with pytest.raises(UsageError, match=fragment):
        logdir_spec(output)


def test_the_command_says_it_in_one_line(tmp_path, capsys):
    assert_usage_error(run_in_process(main, [str(tmp_path / "results")], capsys), "no such folder")
