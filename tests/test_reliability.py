"""Determinism, kill-and-resume, checkpoint fallback, numerical faults and bad teachers."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch as th

from hapo_rl.run import main

TINY = ["--env", "tests.tiny:Corridor-v0", "--teacher", "tests.tiny:RightTeacher", "--no-progress"]
SMALL = ["--group-size", "4", "--groups-per-iter", "4", "--n-train-seeds", "16"]
TIMING = ["wall_time_s"]


def run_args(run_dir, steps=6000, every=1000):
    return [
        *TINY,
        *SMALL,
        "--total-steps",
        str(steps),
        "--eval-every",
        str(every),
        "--eval-episodes",
        "10",
        "--run-dir",
        str(run_dir),
    ]


def curves(run_dir):
    return pd.read_csv(run_dir / "curves.csv").drop(columns=TIMING)


def test_same_seed_same_curves_and_summary(tmp_path):
    assert main(run_args(tmp_path / "a")) == 0
    assert main(run_args(tmp_path / "b")) == 0
    pd.testing.assert_frame_equal(curves(tmp_path / "a"), curves(tmp_path / "b"))
    sa, sb = (json.loads((tmp_path / r / "summary.json").read_text()) for r in "ab")
    for key in ("total_steps", "eval_success_rate", "eval_return_mean", "teacher_steps"):
        assert sa[key] == sb[key]


PPO = ["--algo", "ppo", "--env", "tests.tiny:Corridor-v0", "--no-progress", "--n-envs", "2",
       "--n-steps", "64", "--n-train-seeds", "16"]  # fmt: skip


def ppo_args(run_dir, steps, every):
    return [*PPO, "--total-steps", str(steps), "--eval-every", str(every), "--eval-episodes",
            "10", "--run-dir", str(run_dir)]  # fmt: skip


@pytest.mark.parametrize(
    "make_args, steps, every", [(run_args, 150_000, 10_000), (ppo_args, 40_000, 2_000)]
)
def test_killed_run_resumes_to_the_same_result(tmp_path, make_args, steps, every):
    assert main(make_args(tmp_path / "whole", steps, every)) == 0
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hapo_rl.run", *make_args(killed, steps, every)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "curves.csv").exists() and len(pd.read_csv(killed / "curves.csv")) >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run ended before it was killed"
    assert main(["--resume", "--run-dir", str(killed), "--no-progress"]) == 0
    pd.testing.assert_frame_equal(curves(tmp_path / "whole"), curves(killed))


def test_corrupted_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(run_args(run_dir, 4000, 1000)) == 0
    (run_dir / "summary.json").unlink()
    (run_dir / "model.zip").write_bytes(b"PK\x03\x04 truncated")
    assert main(["--resume", "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert "model.zip is unreadable" in capsys.readouterr().err
    assert (run_dir / "summary.json").exists()


def test_nan_stops_the_run_naming_the_step(tmp_path, capsys, monkeypatch):
    from hapo_rl.algos.grpo import GRPO

    original = GRPO._step_loss

    def poisoned(self, *args):
        loss = original(self, *args)
        return loss * th.nan if self.num_timesteps > 2000 else loss

    monkeypatch.setattr(GRPO, "_step_loss", poisoned)
    run_dir = tmp_path / "run"
    assert main(run_args(run_dir, 6000, 1000)) == 1
    err = capsys.readouterr().err
    assert "non-finite loss at env step" in err and "last good checkpoint" in err
    assert (run_dir / "model.zip").exists() and not (run_dir / "summary.json").exists()


@pytest.mark.parametrize(
    "teacher, message",
    [
        ("tests.tiny:LeftTeacher", "never produced a success"),
        ("tests.tiny:BadActionTeacher", "outside Discrete(2)"),
        ("tests.tiny:RaisingTeacher", "planner crashed"),
    ],
)
def test_bad_teacher_is_rejected_before_any_output(tmp_path, capsys, teacher, message):
    run_dir = tmp_path / "run"
    args = ["--env", "tests.tiny:Corridor-v0", "--teacher", teacher, "--run-dir", str(run_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_env_workers_do_not_change_results(tmp_path):
    assert main(run_args(tmp_path / "local", 3000, 1000)) == 0
    assert main([*run_args(tmp_path / "workers", 3000, 1000), "--env-workers", "2"]) == 0
    pd.testing.assert_frame_equal(curves(tmp_path / "local"), curves(tmp_path / "workers"))


def test_env_with_an_observation_the_policy_cannot_encode(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["--env", "tests.tiny:TextCorridor-v0", "--algo", "grpo", "--run-dir", str(run_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot handle the observation space Text" in err and len(err.splitlines()) == 1
    assert not run_dir.exists()
