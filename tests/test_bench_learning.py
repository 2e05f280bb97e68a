"""benchmarks/bench_learning.py's command line (the run itself is the long learning check)."""

from __future__ import annotations

import pytest

from benchmarks import bench_learning


@pytest.mark.parametrize("argv", [["--kl-beta", "-0.1"], ["--steps", "0"]])
def test_bad_options_are_refused_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_learning.main(argv)
    assert exc.value.code == 2
    assert "--steps must be >= 1 and --kl-beta >= 0" in capsys.readouterr().err


def test_answer_reward_takes_only_the_module_s_two_rewards(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_learning.main(["--answer-reward", "probability"])
    assert exc.value.code == 2
    assert "invalid choice: 'probability'" in capsys.readouterr().err
