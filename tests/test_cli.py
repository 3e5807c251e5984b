"""``python -m hapo_rl.run``: the run folder it writes and the bad input it rejects."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from hapo_rl import HAPO
from hapo_rl.run import main

TINY = ["--env", "tests.tiny:Corridor-v0", "--teacher", "tests.tiny:RightTeacher"]
SMALL = ["--group-size", "4", "--groups-per-iter", "4", "--n-train-seeds", "16", "--no-progress"]


def test_short_run_writes_the_run_folder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [*TINY, *SMALL, "--total-steps", "600", "--eval-every", "200", "--eval-episodes", "5"]
    assert main([*args, "--run-dir", str(run_dir), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "held-out success" in out and "sampled, " in out  # discrete actions: sampled first
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == "tests.tiny:Corridor-v0" and config["seed"] == 3
    assert config["headline_eval"] == "sampled"
    assert {"package_version", "git_commit", "settings", "command"} <= config.keys()
    curves = pd.read_csv(run_dir / "curves.csv")
    assert {
        "step",
        "train_success_rate",
        "eval_success_rate",
        "eval_return_mean",
        "eval_greedy_success_rate",
        "eval_greedy_return_mean",
        "eval_greedy_length_mean",
        "injection_rate",
        "teacher_step_share",
        "replayed_episodes",
    } <= set(curves.columns)
    assert len(curves) >= 3 and curves["step"].is_monotonic_increasing
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "algo",
        "env_id",
        "seed",
        "total_steps",
        "eval_success_rate",
        "eval_return_mean",
        "eval_greedy_success_rate",
        "injection_rate_final",
        "teacher_steps",
        "wall_time_s",
        "steps_per_second",
    ):
        assert key in summary
    assert summary["total_steps"] >= 600 and summary["teacher_steps"] > 0
    assert list((run_dir / "tb").glob("events.out.tfevents*"))
    model = HAPO.load(run_dir / "model.zip")
    action, _ = model.predict(model.observation_space.sample())
    assert model.action_space.contains(int(action))


def test_minigrid_alias_resolves_and_is_saved(tmp_path):
    run_dir = tmp_path / "kc"
    args = [
        "--env",
        "MiniGrid-KeyCorridor",
        "--group-size",
        "2",
        "--groups-per-iter",
        "2",
        "--total-steps",
        "100",
        "--eval-episodes",
        "2",
        "--no-progress",
    ]
    assert main([*args, "--run-dir", str(run_dir)]) == 0
    assert (
        json.loads((run_dir / "config.json").read_text())["env_id"] == "MiniGrid-KeyCorridorS3R3-v0"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env", "MiniGrid-NoSuchTask-v0"], "unknown env"),
        (["--env", "NoSuchModule.x:Env-v0"], "importing NoSuchModule.x failed"),
        (["--algo", "dqn"], "invalid choice"),
        (["--env", "CartPole-v1"], "no built-in teacher"),
        ([*TINY[:2], "--teacher", "no_such_module:Teacher"], "importing no_such_module failed"),
        ([*TINY[:2], "--teacher", "tests.tiny"], "module:callable"),
        ([*TINY, "--total-steps", "0"], "--total-steps must be positive"),
        ([*TINY, "--group-size", "0"], "group_size must be positive"),
        ([*TINY, "--groups-per-iter", "-1"], "groups_per_iter must be positive"),
        (["--algo", "grpo", "--tau", "0.3"], "--tau does not apply to grpo"),
        (["--tau", "2"], "tau must be in [0, 1]"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_folder(tmp_path, capsys, args, message):
    run_dir = tmp_path / "run"
    assert main([*args, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not run_dir.exists()


def test_existing_run_folder_needs_overwrite(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("x")
    assert main([*TINY, "--run-dir", str(run_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (run_dir / "keep.txt").exists()


def test_module_entry_point_exit_status(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hapo_rl.run",
            "--env",
            "NoSuchEnv-v9",
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("hapo_rl.run: error: unknown env")
