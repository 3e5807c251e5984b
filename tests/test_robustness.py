"""What comes from outside the project's own checks: user teachers and envs, damaged files,
Ctrl-C, and commands given twice. Each case ends in one line (exit 2 for bad input, 1 for a
failure inside training, 130 for Ctrl-C) and leaves nothing half-written."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from hapo_rl import experiment, report
from hapo_rl import run as run_cli
from hapo_rl.core.rollout import Episode, success_rate
from hapo_rl.core.tasks import resolve_env_id
from hapo_rl.teachers import base as teacher_base
from hapo_rl.teachers import evaluate
from tests.test_report import make_results

CORRIDOR = ["--env", "tests.tiny:Corridor-v0", "--no-progress"]
SMALL = ["--group-size", "4", "--groups-per-iter", "4", "--n-train-seeds", "16"]
ENV = {**os.environ, "PYTHONPATH": os.getcwd()}


def keyboard() -> None:
    """In a child: Ctrl-C raises KeyboardInterrupt, even under a parent that ignores it (a
    shell's background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def short(run_dir, steps=2000, every=1000, teacher="tests.tiny:RightTeacher"):
    """A short run of hapo with ``teacher``, or of grpo with none."""
    method = ["--teacher", teacher] if teacher else ["--algo", "grpo"]
    return [*CORRIDOR, *method, *SMALL, "--total-steps", str(steps), "--eval-every", str(every),
            "--eval-episodes", "5", "--run-dir", str(run_dir)]  # fmt: skip


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- user teachers -------------------------------------------------------------------------


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Importable modules a user might write: one that raises on import, one that does not
    parse."""
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('no licence file')\n")
    (tmp_path / "does_not_parse.py").write_text("def act(env:\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("raises_on_import:Teacher", "importing raises_on_import failed: RuntimeError"),
        ("does_not_parse:act", "importing does_not_parse failed: SyntaxError"),
        ("tests.tiny:TeacherWithArguments", "needs arguments (speed)"),
        ("tests.tiny:NoSuchTeacher", "module tests.tiny has no NoSuchTeacher"),
        ("tests.tiny:HELD", "not a class or function"),
    ],
)
def test_a_broken_user_teacher_is_one_line_naming_it(tmp_path, capsys, user_modules, spec,
                                                     message, monkeypatch):  # fmt: skip
    import tests.tiny

    monkeypatch.setattr(tests.tiny, "HELD", 3, raising=False)
    run_dir = tmp_path / "run"
    assert run_cli.main(short(run_dir, teacher=spec)) == 2
    err = one_line(capsys)
    assert message in err and spec in err
    assert not run_dir.exists()


@pytest.mark.parametrize("spec", ["tests.tiny:step_right", "tests.tiny:step_right_seeing"])
def test_a_plain_function_is_a_teacher(tmp_path, spec):
    run_dir = tmp_path / "run"
    assert run_cli.main(short(run_dir, 3000, teacher=spec)) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["teacher_steps"] > 0 and summary["eval_greedy_success_rate"] == 1.0


def test_a_teacher_that_never_returns_is_stopped(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(teacher_base, "CALL_LIMIT_S", 0.2)
    run_dir = tmp_path / "run"
    start = time.perf_counter()
    assert run_cli.main(short(run_dir, teacher="tests.tiny:StuckTeacher")) == 2
    assert time.perf_counter() - start < 30
    assert "its act call took more than 0.2 s" in one_line(capsys)
    assert not run_dir.exists()


# -- user envs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, message",
    [
        ("tests.tiny:BrokenResetCorridor-v0", "reset raised ValueError: the level file is missing"),
        ("tests.tiny:TextInDictCorridor-v0", "cannot handle the observation space Text"),
    ],
)
def test_a_broken_user_env_is_one_line_and_no_folder(tmp_path, capsys, env, message):
    run_dir = tmp_path / "run"
    args = ["--env", env, "--algo", "grpo", "--run-dir", str(run_dir), "--no-progress"]
    assert run_cli.main(args) == 2
    assert message in one_line(capsys)
    assert not run_dir.exists()


def test_an_env_without_a_step_limit_gets_the_documented_one(tmp_path, monkeypatch):
    from hapo_rl.core import tasks

    monkeypatch.setattr(tasks, "EPISODE_LIMIT", 30)
    run_dir = tmp_path / "run"
    args = ["--env", "tests.tiny:EndlessCorridor-v0", "--algo", "grpo", *SMALL, "--no-progress",
            "--total-steps", "1000", "--eval-every", "1000", "--eval-episodes", "3",
            "--run-dir", str(run_dir)]  # fmt: skip
    assert run_cli.main(args) == 0
    assert json.loads((run_dir / "summary.json").read_text())["eval_length_mean"] == 30


def test_an_env_failing_mid_run_is_one_line_with_the_traceback_kept(tmp_path, capsys,
                                                                    monkeypatch):  # fmt: skip
    import tests.tiny

    original = tests.tiny.Corridor.step

    def step(self, action):
        if getattr(self, "calls", 0) > 500:
            raise OSError("the simulator went away")
        self.calls = getattr(self, "calls", 0) + 1
        return original(self, action)

    monkeypatch.setattr(tests.tiny.Corridor, "step", step)
    run_dir = tmp_path / "run"
    assert run_cli.main(short(run_dir, 20_000, teacher=None)) == 1
    err = one_line(capsys)
    assert "OSError: the simulator went away" in err and "error.txt" in err
    assert "Traceback" in (run_dir / "error.txt").read_text()
    assert (run_dir / "model.zip").is_file()


def test_an_id_without_a_version_is_its_latest_version():
    assert resolve_env_id("MiniGrid-DoorKey-5x5") == "MiniGrid-DoorKey-5x5-v0"
    assert resolve_env_id("tests.tiny:Corridor") == "tests.tiny:Corridor-v0"


# -- damaged files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory):
    """A run stopped before its end: its summary removed."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    assert run_cli.main(short(run_dir, 3000)) == 0
    (run_dir / "summary.json").unlink()
    return run_dir


def copy_of(run_dir, tmp_path):
    import shutil

    shutil.copytree(run_dir, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("config.json", b'{"algo": "hapo", "seed"', "config.json is damaged (not JSON"),
        ("config.json", b"\xff\xfe garbage", "config.json is damaged (not JSON"),
        ("config.json", b"[1, 2]", "config.json is damaged (not a JSON object)"),
        ("config.json", None, "total_steps should be int, is '3000'"),
        ("curves.csv", b'step,eval_success_rate\n"0,1\n', "curves.csv is damaged"),
        ("curves.csv", b"\x00\x01\x02", "curves.csv is damaged"),
    ],
)
def test_resume_of_a_damaged_run_is_one_line_and_writes_nothing(
    unfinished, tmp_path, capsys, name, content, message
):
    run_dir = copy_of(unfinished, tmp_path)
    if content is None:  # a value of the wrong type
        config = json.loads((run_dir / name).read_text())
        content = json.dumps({**config, "total_steps": "3000"}).encode()
    (run_dir / name).write_bytes(content)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert run_cli.main(["--resume", "--run-dir", str(run_dir), "--no-progress"]) == 2
    assert message in one_line(capsys)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_no_previous_checkpoint_is_not_promised(unfinished, tmp_path, capsys):
    run_dir = copy_of(unfinished, tmp_path)
    (run_dir / "model.prev.zip").unlink()
    (run_dir / "model.zip").write_bytes(b"PK\x03\x04 truncated")
    assert run_cli.main(["--resume", "--run-dir", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "model.zip is unreadable" in err and "no readable checkpoint" in err
    assert "trying the previous one" not in err


@pytest.mark.parametrize(
    "name, content",
    [
        ("curves.parquet", b""),
        ("curves.parquet", b"PAR1 not really"),
        ("runs.csv", b"\x00\x01"),
        ("runs.csv", b"method\nhapo\n"),
        ("experiment.json", b"{"),
        ("experiment.json", b"[]"),
    ],
)
def test_a_damaged_results_file_is_one_line_for_the_report(tmp_path, capsys, name, content):
    folder, out = tmp_path / "results", tmp_path / "figs"
    make_results(folder)
    (folder / name).write_bytes(content)
    assert report.main([str(folder), "--out", str(out)]) == 2
    err = one_line(capsys)
    assert f"{name} is damaged" in err and "rerun the experiment's command" in err
    assert not out.exists()


# -- experiment files ----------------------------------------------------------------------

GRID = """
[experiment]
tasks = ["tests.tiny:Corridor-v0"]
seeds = [0, 1]
total_steps = 600

[methods.hapo]
algo = "hapo"
teacher = "tests.tiny:RightTeacher"
"""


@pytest.mark.parametrize(
    "text, message",
    [
        (GRID.encode("utf-16"), "not UTF-8 text"),
        (b"experiment = 3\n", "experiment: expected a table"),
        (b'methods = "hapo"\n', "methods: expected a table"),
        (GRID.replace("[0, 1]", "[0, 1, 0]").encode(), "experiment.seeds: 0 appears more than"),
        (
            GRID.replace(
                '["tests.tiny:Corridor-v0"]', '["tests.tiny:Corridor-v0", "tests.tiny:Corridor"]'
            ).encode(),
            "experiment.tasks: tests.tiny:Corridor-v0 appears more than once",
        ),  # fmt: skip
        (GRID.replace("RightTeacher", "NoSuchTeacher").encode(), "has no NoSuchTeacher"),
        (
            GRID.replace("tests.tiny:Corridor-v0", "CartPole-v1")
            .replace('teacher = "tests.tiny:RightTeacher"\n', "")
            .encode(),
            "methods.hapo: no built-in teacher for CartPole-v1",
        ),
        ((GRID + "env_workers = -1\n").encode(), "methods.hapo.env_workers: expected 0 or more"),
    ],
)
def test_an_experiment_file_that_could_not_run_is_refused_before_anything_runs(
    tmp_path, capsys, text, message
):
    path, out = tmp_path / "exp.toml", tmp_path / "out"
    path.write_bytes(text)
    assert experiment.main([str(path), "--out", str(out)]) == 2
    assert message in one_line(capsys)
    assert not out.exists()


# -- the keyboard --------------------------------------------------------------------------


def wait_for(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        time.sleep(0.05)
    assert predicate(), "timed out"


def test_ctrl_c_while_a_checkpoint_is_saved_keeps_the_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.prev.zip").write_bytes(b"")  # model.zip moved aside, the new one unwritten
    assert run_cli._interrupted(run_dir, 2000, fresh=True) == 130
    assert run_dir.is_dir() and "--resume" in capsys.readouterr().err


def test_ctrl_c_on_a_run_says_how_to_resume_it(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hapo_rl.run", *short(run_dir, 200_000, 2000)],
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=keyboard,
    )

    def evaluated_twice():
        curves = run_dir / "curves.csv"
        return curves.is_file() and len(pd.read_csv(curves)) >= 2

    wait_for(evaluated_twice)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"--resume --run-dir {run_dir}" in err
    assert not (run_dir / "summary.json").exists()


SWEEP = """
[experiment]
tasks = ["tests.tiny:Corridor-v0"]
seeds = [0, 1, 2, 3, 4, 5]
total_steps = 20_000
eval_every = 5_000
eval_episodes = 5

[methods.grpo]
algo = "grpo"
group_size = 4
groups_per_iter = 4
n_train_seeds = 16
"""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_a_sweep_within_seconds_and_a_rerun_finishes_it(tmp_path, stop):
    path, out = tmp_path / "sweep.toml", tmp_path / "out"
    path.write_text(SWEEP)
    cmd = [sys.executable, "-m", "hapo_rl.experiment", str(path), "--out", str(out)]
    proc = subprocess.Popen([*cmd, "--workers", "1"], env=ENV, stderr=subprocess.PIPE, text=True,
                            preexec_fn=keyboard)  # fmt: skip
    summaries = lambda: list(out.glob("grpo/*/s*/summary.json"))  # noqa: E731
    wait_for(lambda: len(summaries()) >= 1)
    time.sleep(0.5)  # the second run is under way
    proc.send_signal(stop)  # Ctrl-C, or kill (SIGTERM) as a cluster scheduler sends it
    start = time.perf_counter()
    _, err = proc.communicate(timeout=30)
    assert time.perf_counter() - start < 15
    assert proc.returncode == 130 and "rerun the same command" in err.strip().splitlines()[-1]
    done = len(summaries())
    assert 1 <= done < 6, "the sweep ended before it was interrupted"
    time.sleep(2.0)  # a run left alive, or one started after Ctrl-C, would go on writing
    assert len(summaries()) == done
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "finished").sum() == done and runs["error"].isna().all()
    assert experiment.main([str(path), "--out", str(out), "--workers", "2"]) == 0
    assert len(summaries()) == 6


# -- smaller things ------------------------------------------------------------------------


def test_summary_is_strict_json(tmp_path):
    run_dir = tmp_path / "run"
    args = [*CORRIDOR, "--algo", "grpo", *SMALL, "--total-steps", "20", "--eval-every", "20",
            "--eval-episodes", "3", "--run-dir", str(run_dir)]  # fmt: skip
    assert run_cli.main(args) == 0

    def refuse(constant):
        raise ValueError(constant)

    summary = json.loads((run_dir / "summary.json").read_text(), parse_constant=refuse)
    assert summary["injection_rate_final"] is None  # no group finished: no rate to give


def episode(success: bool, cut: bool, length: int = 3) -> Episode:
    z = np.zeros(length, np.float32)
    return Episode(0, z[:, None], z, z, z, success=success, terminated=success, cut=cut)


def test_an_iteration_cut_by_the_budget_reports_no_training_success():
    # the budget ran out while the failures were still running: only the successes finished
    assert success_rate([episode(True, False), episode(False, True)]) != 1.0
    assert np.isnan(success_rate([episode(True, False), episode(False, True)]))
    assert success_rate([episode(True, False), episode(False, False)]) == 0.5


def test_a_budget_below_one_iteration_says_so(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [*CORRIDOR, "--algo", "grpo", *SMALL, "--total-steps", "20", "--eval-every", "20",
            "--eval-episodes", "3", "--run-dir", str(run_dir)]  # fmt: skip
    assert run_cli.main(args) == 0
    captured = capsys.readouterr()
    assert "policy was never updated" in captured.err and "injection rate n/a" in captured.out


def test_the_same_command_again_says_what_the_folder_holds(unfinished, tmp_path, capsys):
    finished = tmp_path / "finished"
    assert run_cli.main(short(finished)) == 0
    capsys.readouterr()
    assert run_cli.main(short(finished)) == 2
    assert "already holds this run, finished; --overwrite runs it again" in one_line(capsys)
    assert run_cli.main([*short(finished), "--seed", "1"]) == 2
    assert "holds a different run (seed 0, not 1)" in one_line(capsys)
    assert run_cli.main(short(unfinished, 3000)) == 2
    assert (
        f"unfinished; continue it with python -m hapo_rl.run --resume --run-dir {unfinished}"
        in (one_line(capsys))
    )


def test_resume_accepts_the_saved_settings_and_names_the_others(unfinished, tmp_path, capsys):
    run_dir = copy_of(unfinished, tmp_path)
    different = ["--resume", "--run-dir", str(run_dir), "--seed", "3", "--group-size", "8"]
    assert run_cli.main(different) == 2
    err = one_line(capsys)
    assert "--group-size 8 (saved 4)" in err and "--seed 3 (saved 0)" in err
    assert run_cli.main(["--resume", *short(run_dir, 3000)]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["total_steps"] >= 3000


def test_teacher_evaluation_writes_only_where_told(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--envs", "tests.tiny:Corridor", "--teacher", "tests.tiny:RightTeacher",
            "--episodes", "4"]  # fmt: skip
    assert evaluate.main(args) == 0
    assert "| tests.tiny:Corridor-v0 | 1.000 |" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    assert evaluate.main([*args, "--out", "t.csv"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]
    assert evaluate.main(["--envs", "MiniGrid-DoorKey", "--episodes", "2"]) == 0  # an alias
    assert "| MiniGrid-DoorKey-" in capsys.readouterr().out
    assert evaluate.main(["--envs", "MiniGrid-Nope"]) == 2
    assert "unknown env" in one_line(capsys)
