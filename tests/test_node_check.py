"""Before any training, every node that will train is asked whether it has the pinned stack (issue 25, case 10):
on the session's embedded Ray, through the same pinned per-node task a cluster gets. The GPU half of the check,
on a head that advertises a GPU torch cannot use: tests/test_other_rays.py."""

import pytest

from jobs.engine.errors import UsageError
from jobs.engine.run.node_check import check_nodes, pinned

# A package no index has, and the stack's own Ray at a version it is not.
UNMET = ["archsweep-no-such-package==1.0", "ray==2.59.0"]


@pytest.mark.parametrize("in_process", [False, True])
def test_the_real_pins_pass(ray_local, in_process):
    assert any(line.startswith("optuna==") for line in pinned())
    check_nodes("auto", in_process=in_process)


def test_a_node_without_the_pins_is_one_line_naming_it_and_the_fix(ray_local):
    with pytest.raises(UsageError) as caught:
        check_nodes("off", in_process=False, requirements=[*pinned(), *UNMET])
    message = str(caught.value)
    node = ray_local.get_runtime_context().get_node_id()[:8]
    assert "\n" not in message and f"node {node}" in message, message
    assert "lacks archsweep-no-such-package==1.0" in message and "has ray 2.60.0 (pinned ray==2.59.0)" in message
    assert '"pip": ["archsweep-no-such-package==1.0"]' in message  # Ray itself comes with the image
    assert "use one with ray==2.59.0" in message


def test_what_an_extra_brings_is_checked_too(ray_local):
    # `pip install ray` without the extras that Tune and Train import: here RLlib's, which this stack lacks.
    with pytest.raises(UsageError, match=r"lacks .*gymnasium.* \(for ray\[rllib\]\)"):
        check_nodes("off", in_process=False, requirements=["ray[rllib]==2.60.0"])


def test_a_command_stops_before_training(ray_local, tmp_path, monkeypatch, capsys):
    import jobs.engine.run.node_check
    from jobs.train import main
    from tests.cli import assert_usage_error, run_in_process
    from tests.idx_files import write_mnist

    # The driver reads the pins from its working dir's requirements.txt: here one with a pin no node can meet.
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(jobs.engine.run.node_check.REQUIREMENTS.read_text() + "\n" + UNMET[0] + "  # injected\n")
    monkeypatch.setattr(jobs.engine.run.node_check, "REQUIREMENTS", requirements)
    proc = run_in_process(main, ["--model", "cnn", "--preset", "smoke", "--data-dir", str(write_mnist(tmp_path / "m")),
                                 "--output", str(tmp_path / "out")], capsys)
    assert_usage_error(proc, f"lacks {UNMET[0]}")
    assert "training cnn" not in proc.stdout and not list((tmp_path / "out").glob("*/result.json"))


def test_a_check_that_cannot_run_on_a_node_is_one_line_naming_it(ray_local):
    # Here a line the node's packaging cannot parse; on a cluster, a node without our working dir.
    with pytest.raises(UsageError, match=r"^node .*: the check of its packages could not run \(.*\)"):
        check_nodes("off", in_process=False, requirements=["archsweep ~~ not a requirement"])
