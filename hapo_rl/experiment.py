"""Run a grid of methods x tasks x seeds from a TOML file: ``python -m hapo_rl.experiment FILE``.

Each run is ``python -m hapo_rl.run`` in its own process, writing
``<out>/<method>/<env_id>/s<seed>/``; rerunning the same command skips finished runs and resumes
interrupted ones from their last checkpoint. At the end all curves are gathered into one tidy
table, ``<out>/curves.parquet`` (and ``curves.csv``), one row per run and evaluation point, and
``<out>/runs.csv`` lists each run's status and error, ``<out>/experiment.json`` the checked
file (methods, settings, tasks, seeds, reference method). ``--methods`` and ``--seeds`` run a
part of the grid (the tables still gather every run in ``<out>``); ``--hours H`` starts a run
only while its projected time (as ``--estimate`` projects it) still fits in H hours, for an
allocation with a time limit. Exit status: 0 when every run asked for finished, 1 when some
failed or were left for a later start, 2 for a bad experiment file or option.

The file (see ``experiments/smoke.toml``)::

    [experiment]
    tasks = ["MiniGrid-KeyCorridorS3R3-v0"]   # ids or aliases
    seeds = [0, 1, 2]
    total_steps = 1_000_000
    eval_every = 100_000
    eval_episodes = 100
    reference = "hapo"        # the method ablation tables compare against (default: the first)

    [methods.hapo]            # a method: its algo and any of its settings (see run --help)
    algo = "hapo"
    [methods.hapo-tau03]
    algo = "hapo"
    tau = 0.3

    [profiles.cluster]        # --profile cluster replaces these [experiment] keys
    seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomllib
from tqdm import tqdm

from hapo_rl.common.cli import OneLineParser, UsageError
from hapo_rl.common.io import atomic_write, write_csv, write_json
from hapo_rl.core.config import TeacherConfig
from hapo_rl.core.tasks import Task, TaskError, resolve_env_id
from hapo_rl.cost import estimate, step_cost, timed_runs
from hapo_rl.envs.mujoco import is_goal_conditioned
from hapo_rl.methods import METHODS
from hapo_rl.teachers import load_teacher
from hapo_rl.teachers.evaluate import held_out

RUN_OPTIONS: dict[str, type] = {"teacher": str, "env_workers": int}
EXPERIMENT_KEYS: dict[str, type] = {
    "tasks": list,
    "seeds": list,
    "total_steps": int,
    "eval_every": int,
    "eval_episodes": int,
    "reference": str,
}
REQUIRED = ("tasks", "seeds", "total_steps")
PR_SET_PDEATHSIG = 1


class ExperimentError(ValueError):
    """A bad experiment file: names the file, the key and what was expected."""


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of the grid."""

    method: str
    algo: str
    env_id: str
    seed: int
    total_steps: int
    eval_every: int
    eval_episodes: int
    settings: tuple[tuple[str, Any], ...]

    def run_dir(self, out: Path) -> Path:
        return out / self.method / self.env_id.split(":")[-1] / f"s{self.seed}"

    def resolved_settings(self) -> dict[str, Any]:
        """Every setting of the run's method, defaults included, as the run records them."""
        method = METHODS[self.algo]
        given = {k: v for k, v in self.settings if k not in RUN_OPTIONS}
        return dataclasses.asdict(method.config_class(**method.settings(self.algo, given)))

    def mismatch(self, out: Path) -> str | None:
        """How the run already in this run's folder differs from it, if it does; a setting
        its config.json lacks (added to the package since) counts at its default."""
        path = self.run_dir(out) / "config.json"
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            saved = {**saved, **saved.get("settings", {})}
        except (UnicodeDecodeError, ValueError, TypeError, AttributeError):
            return "its config.json is damaged"
        want = {
            "algo": self.algo,
            "env_id": self.env_id,
            "seed": self.seed,
            "total_steps": self.total_steps,
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
            "teacher": dict(self.settings).get("teacher"),
            **self.resolved_settings(),
        }
        # a setting added after the run was made ran at its default
        fields = dataclasses.fields(METHODS[self.algo].config_class)
        defaults = {f.name: f.default for f in fields}
        saved = {**{k: d for k, d in defaults.items() if k not in saved}, **saved}
        diff = [f"{k} {saved.get(k)!r} != {v!r}" for k, v in want.items() if saved.get(k) != v]
        return ", ".join(diff) or None

    def status(self, out: Path) -> str:
        """``finished``, ``partial`` (a checkpoint to resume from) or ``new``."""
        d = self.run_dir(out)
        if (d / "summary.json").is_file():
            return "finished"
        if (d / "config.json").is_file() and any(
            (d / n).is_file() for n in ("model.zip", "model.prev.zip")
        ):
            return "partial"
        return "new"

    def command(self, out: Path) -> list[str]:
        d = self.run_dir(out)
        base = [sys.executable, "-m", "hapo_rl.run", "--run-dir", str(d), "--no-progress"]
        if self.status(out) == "partial":
            return [*base, "--resume"]
        argv = [
            *base,
            "--overwrite",
            "--env",
            self.env_id,
            "--algo",
            self.algo,
            "--seed",
            str(self.seed),
            "--total-steps",
            str(self.total_steps),
            "--eval-every",
            str(self.eval_every),
            "--eval-episodes",
            str(self.eval_episodes),
        ]
        for key, value in self.settings:
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        return argv


def _expect(path: Path, key: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        name = "a table" if kind is dict else kind.__name__
        raise ExperimentError(f"{path}: {key}: expected {name}, got {value!r}")
    return value


def _method_settings(path: Path, name: str, table: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise ExperimentError(f"{path}: methods.{name}: expected a table")
    algo = table.get("algo")
    if algo not in METHODS:
        raise ExperimentError(
            f"{path}: methods.{name}.algo: expected one of {', '.join(METHODS)}, got {algo!r}"
        )
    method = METHODS[algo]
    fields = {f.name: f for f in dataclasses.fields(method.config_class)}
    settings: dict[str, Any] = {}
    for key, value in table.items():
        where = f"methods.{name}.{key}"
        if key == "algo":
            continue
        if key in RUN_OPTIONS:
            settings[key] = _expect(path, where, value, RUN_OPTIONS[key])
            if key == "env_workers" and value < 0:
                raise ExperimentError(f"{path}: {where}: expected 0 or more, got {value}")
        elif key in fields:
            kind = {"int": int, "float": float, "str": str, "bool": bool}[str(fields[key].type)]
            settings[key] = _expect(path, where, value, kind)
            choices = fields[key].metadata.get("choices")
            if choices and value not in choices:
                raise ExperimentError(
                    f"{path}: {where}: expected one of {', '.join(choices)}, got {value!r}"
                )
        else:
            raise ExperimentError(
                f"{path}: {where}: unknown setting for {algo}; see python -m hapo_rl.run --help"
            )
    if "teacher" in settings and not method.uses_teacher:
        raise ExperimentError(f"{path}: methods.{name}.teacher: {algo} uses no teacher")
    try:
        given = {k: v for k, v in settings.items() if k in fields}
        method.config_class(**method.settings(algo, given, lambda k: f"{k}"))
    except ValueError as exc:
        raise ExperimentError(f"{path}: methods.{name}: {exc}") from None
    return algo, settings


def _check_teacher(
    path: Path, name: str, algo: str, settings: dict[str, Any], tasks: list[str]
) -> None:
    """Load the method's teacher for every task, as each run will: a teacher spec that does
    not import, or a task with no built-in teacher, fails the file before anything runs."""
    if not METHODS[algo].uses_teacher:
        return
    for task in tasks:
        try:
            load_teacher(task, settings.get("teacher"))
        except TaskError as exc:
            raise ExperimentError(f"{path}: methods.{name}: {exc}") from None


@dataclasses.dataclass
class Experiment:
    """A checked experiment file: its grid and what the report needs to know about it."""

    name: str
    file: str
    profile: str | None
    reference: str  # the method ablation tables compare against
    tasks: list[str]
    seeds: list[int]
    methods: dict[str, dict[str, Any]]  # name -> algo and settings
    specs: list[RunSpec]


def load_experiment(path: Path, profile: str | None = None) -> Experiment:
    """Parse and check the whole file; returns its name and the grid of runs."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"experiment", "methods", "profiles"}
    if unknown:
        raise ExperimentError(
            f"{path}: {sorted(unknown)[0]}: unknown key; expected experiment, methods, profiles"
        )
    for key in ("experiment", "methods", "profiles"):
        _expect(path, key, data.get(key, {}), dict)
    exp = dict(data.get("experiment", {}))
    profiles = data.get("profiles", {})
    if profile is not None:
        if profile not in profiles:
            raise ExperimentError(
                f"{path}: profiles.{profile}: no such profile "
                f"(have: {', '.join(profiles) or 'none'})"
            )
        exp.update(_expect(path, f"profiles.{profile}", profiles[profile], dict))
    for key in exp:
        if key not in EXPERIMENT_KEYS:
            raise ExperimentError(
                f"{path}: experiment.{key}: unknown key; "
                f"expected one of {', '.join(EXPERIMENT_KEYS)}"
            )
        _expect(path, f"experiment.{key}", exp[key], EXPERIMENT_KEYS[key])
    for key in REQUIRED:
        if key not in exp:
            raise ExperimentError(f"{path}: experiment.{key}: missing")
    seeds = [_expect(path, "experiment.seeds[]", s, int) for s in exp["seeds"]]
    try:
        tasks = [resolve_env_id(_expect(path, "experiment.tasks[]", t, str)) for t in exp["tasks"]]
    except TaskError as exc:
        raise ExperimentError(f"{path}: experiment.tasks: {exc}") from None
    for key, values in (("seeds", seeds), ("tasks", tasks)):
        twice = sorted({v for v in values if values.count(v) > 1}, key=str)
        if twice:
            raise ExperimentError(
                f"{path}: experiment.{key}: {twice[0]} appears more than once (runs would share "
                "a folder)"
            )
    total = exp["total_steps"]
    every = exp.get("eval_every", max(1, total // 10))
    episodes = exp.get("eval_episodes", 100)
    for key, value in (("total_steps", total), ("eval_every", every), ("eval_episodes", episodes)):
        if value < 1:
            raise ExperimentError(
                f"{path}: experiment.{key}: expected a positive integer, got {value}"
            )
    methods = {name: _method_settings(path, name, t) for name, t in data.get("methods", {}).items()}
    for name, (algo, settings) in methods.items():
        for task in tasks if algo == "her" else ():
            if not is_goal_conditioned(task):
                raise ExperimentError(
                    f"{path}: methods.{name}: her needs goal-conditioned tasks; {task} is not"
                )
        _check_teacher(path, name, algo, settings, tasks)
    specs = [
        RunSpec(
            m,
            algo,
            env_id,
            seed,
            total,
            every,
            episodes,
            tuple(sorted(s.items())),
        )
        for seed in seeds  # seed-major: a sweep cut short has whole seeds of every method
        for env_id in tasks
        for m, (algo, s) in methods.items()
    ]
    if not specs:
        raise ExperimentError(
            f"{path}: the grid is empty: it needs at least one method, task and seed"
        )
    reference = exp.get("reference", next(iter(methods)))
    if reference not in methods:
        raise ExperimentError(
            f"{path}: experiment.reference: expected one of the methods "
            f"({', '.join(methods)}), got {reference!r}"
        )
    return Experiment(
        name=path.stem,
        file=str(path),
        profile=profile,
        reference=reference,
        tasks=tasks,
        seeds=seeds,
        methods={m: {"algo": algo, **s} for m, (algo, s) in methods.items()},
        specs=specs,
    )


def _die_with_parent() -> None:
    """In a run's process: ask Linux to kill it when the runner that started it dies, so a
    killed sweep leaves no run behind it writing to its folder; and let SIGINT interrupt it
    (``Runs.stop``) even where the runner was started with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Runs:
    """The run processes this runner has started; ``stop`` ends them all (on Ctrl-C) and
    keeps any more from starting."""

    def __init__(self) -> None:
        self.running: set[subprocess.Popen] = set()
        self.stopped = False
        self.lock = threading.Lock()

    def execute(self, command: list[str], cwd: str) -> tuple[int, str]:
        """Run one ``hapo_rl.run`` command (in ``cwd`` where that folder exists on this node);
        returns its exit status and last stderr line."""
        with self.lock:
            if self.stopped:
                return INTERRUPTED, "not started: the sweep was interrupted"
            proc = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                cwd=cwd if os.path.isdir(cwd) else None,
                preexec_fn=_die_with_parent,
            )
            self.running.add(proc)
        try:
            _, stderr = proc.communicate()
        finally:
            with self.lock:
                self.running.discard(proc)
        lines = [line for line in stderr.splitlines() if line.strip()]
        return proc.returncode, lines[-1] if lines else ""

    def stop(self, grace_s: float = 10.0) -> None:
        """Interrupt every running run (each keeps its last checkpoint), killing any still
        alive after ``grace_s``."""
        with self.lock:
            self.stopped = True
            procs = list(self.running)
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


#: Exit status of an interrupted run (and of this runner when interrupted): 128 + SIGINT.
INTERRUPTED = 130


def _execute(spec: RunSpec, out: str, cwd: str) -> tuple[int, str]:
    """One run as a Ray task, in a process of its own. The command is made where the task
    starts, so that a task Ray retries after its node was lost resumes from the run's last
    checkpoint rather than starting over, and does nothing if the run had finished."""
    if spec.status(Path(out)) == "finished":
        return 0, ""
    return Runs().execute(spec.command(Path(out)), cwd)


def _local(
    commands: list[list[str]],
    workers: int,
    done: Callable[[int, tuple[int, str]], None],
    fits: Callable[[int], bool] = lambda i: True,
    started: Callable[[int], None] = lambda i: None,
) -> list[int]:
    """Run the commands on ``workers`` processes at once, each worker taking the first waiting
    command that ``fits`` when it is free (``started`` told of it); returns the commands left
    because none fitted."""
    runs = Runs()
    pool = ThreadPoolExecutor(max_workers=workers)
    waiting = list(range(len(commands)))
    futures: dict[Future, int] = {}

    def start() -> None:
        while len(futures) < workers and (i := next(filter(fits, waiting), None)) is not None:
            waiting.remove(i)
            futures[pool.submit(runs.execute, commands[i], os.getcwd())] = i
            started(i)

    try:
        start()
        while futures:
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for f in finished:
                done(futures.pop(f), f.result())
            start()
        return waiting
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        runs.stop()
        raise
    finally:
        pool.shutdown(wait=True)


def _ray(
    specs: list[RunSpec],
    out: Path,
    address: str | None,
    done: Callable[[int, tuple[int, str]], None],
) -> None:
    """Each run as a Ray task (one CPU) on the cluster at ``address`` (a local instance if
    None). A task whose node is lost is retried elsewhere by Ray (``RETRIES``), resuming its
    run; one that still cannot finish is reported as failed, for a rerun to finish."""
    try:
        import ray
        from ray.exceptions import RayError
    except ImportError:
        raise ExperimentError("--backend ray needs Ray: pip install 'hapo_rl[ray]'") from None
    ray.init(  # "local": a fresh instance, never a cluster an earlier `ray start` left behind
        address=address or "local",
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
    )
    remote = ray.remote(num_cpus=1, max_retries=RETRIES)(_execute)
    where = str(out.absolute())  # every node must see the same --out folder
    refs = {remote.remote(spec, where, os.getcwd()): i for i, spec in enumerate(specs)}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    result = ray.get(ref)
                except RayError as exc:  # its node lost more often than Ray retries
                    result = (1, f"lost on the cluster: {type(exc).__name__}")
                done(refs[ref], result)
    except KeyboardInterrupt:
        for ref in pending:  # a killed task's run dies with it (PR_SET_PDEATHSIG)
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()


#: Times Ray reruns a run's task whose node died (each rerun resumes the run).
RETRIES = 3

#: ``--hours`` starts a run only if this many times its projected seconds still fit: runs of
#: one cell vary by seed, and a run resumed from a checkpoint is projected whole.
SLACK = 1.25


def _projected_seconds(specs: list[RunSpec], timings: Path, out: Path) -> list[float]:
    """Each run's projected wall-clock (``cost.step_cost`` times its budget; NaN where no run
    of its algo and task is timed under ``timings`` or in the sweep's own ``out``)."""
    timed = timed_runs(timings, out)
    return [step_cost(timed, s)[0] * s.total_steps for s in specs]


def _selected(
    experiment: Experiment, methods: list[str] | None, seeds: list[int] | None
) -> list[RunSpec]:
    """The runs of the grid that ``--methods`` and ``--seeds`` ask for (all by default)."""
    for flag, asked, known in (
        ("--methods", methods, list(experiment.methods)),
        ("--seeds", seeds, experiment.seeds),
    ):
        if unknown := [x for x in asked or [] if x not in known]:
            have = ", ".join(map(str, known))
            raise ExperimentError(
                f"{flag} {unknown[0]} is not in {experiment.file} (it has {have})"
            )
    return [
        s
        for s in experiment.specs
        if (not methods or s.method in methods) and (not seeds or s.seed in seeds)
    ]


def _tagged(frame: pd.DataFrame, name: str, spec: RunSpec, out: Path) -> pd.DataFrame:
    frame.insert(0, "experiment", name)
    frame.insert(1, "method", spec.method)
    frame.insert(2, "algo", spec.algo)
    frame.insert(3, "env_id", spec.env_id)
    frame.insert(4, "seed", spec.seed)
    frame.insert(5, "finished", spec.status(out) == "finished")
    return frame


def gather(name: str, specs: Iterable[RunSpec], out: Path) -> pd.DataFrame:
    """One tidy table of every run's curves, tagged with experiment, method, algo, task and seed
    (and ``gate.parquet``, every gate posterior recorded, where runs have a gate)."""
    frames = []
    for spec in specs:
        curves = spec.run_dir(out) / "curves.csv"
        if curves.is_file():
            frames.append(_tagged(pd.read_csv(curves), name, spec, out))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    atomic_write(out / "curves.parquet", lambda p: table.to_parquet(p, index=False))
    write_csv(out / "curves.csv", table)
    gates = [
        _tagged(pd.read_csv(f), name, s, out)
        for s in specs
        if (f := s.run_dir(out) / "gate.csv").is_file()
    ]
    gates = [g for g in gates if len(g)]  # a gate that saw no start state yet
    if gates:
        # posterior_mean is alpha / (alpha + beta): the figures derive it, the file stays small
        gate_table = pd.concat(gates, ignore_index=True).drop(columns="posterior_mean")
        floats = gate_table.select_dtypes("float64").columns  # posteriors: float32 is plenty
        gate_table[floats] = gate_table[floats].astype("float32")
        atomic_write(
            out / "gate.parquet",
            lambda p: gate_table.to_parquet(p, index=False, compression="zstd"),
        )
    return table


def tables(name: str, specs: list[RunSpec], out: Path, errors: dict[RunSpec, str]) -> pd.DataFrame:
    """Write the tidy curves (``gather``) and ``runs.csv``, each run's status and error."""
    gather(name, specs, out)
    runs = pd.DataFrame(
        [
            {
                **dataclasses.asdict(s),
                "settings": dict(s.settings),
                "status": s.status(out),
                "error": errors.get(s, ""),
            }
            for s in specs
        ]
    )
    write_csv(out / "runs.csv", runs)
    return runs


TEACHER_KNOBS = (
    "teacher_epsilon", "teacher_detour", "teacher_coverage", "teacher_fail", "teacher_detour_stops"
)  # fmt: skip


def _teacher_on_held_out(spec: RunSpec, settings: dict[str, Any], teacher: str | None) -> dict:
    seeds = Task(spec.env_id).eval_seeds(spec.eval_episodes)
    knobs = [settings[k] for k in ("teacher_detour", "teacher_epsilon", "teacher_coverage")]
    try:
        return held_out(
            spec.env_id, seeds, *knobs, spec=teacher, fail=settings["teacher_fail"],
            detour_stops=settings["teacher_detour_stops"],
        )  # fmt: skip
    except Exception as exc:  # a teacher that breaks is reported by its runs; note it here
        tqdm.write(f"teacher for {spec.method} on {spec.env_id} not measured: {exc}")
        return dict.fromkeys(("success_rate", "return_mean", "length_mean"), float("nan"))


def teacher_table(specs: list[RunSpec], out: Path) -> pd.DataFrame:
    """``teachers.csv``: for each method that learns from a teacher and each task, the teacher
    with the method's quality settings on the held-out start states the runs are evaluated on.
    A teacher shared by several methods is run once; measurements already in the file are
    kept."""
    path = out / "teachers.csv"
    keys = ["env_id", "teacher", *TEACHER_KNOBS, "episodes"]
    known = pd.read_csv(path, keep_default_na=False) if path.is_file() else pd.DataFrame()
    if len(known):  # a knob added since the file was written was at its default
        defaults = {f.name: f.default for f in dataclasses.fields(TeacherConfig)}
        known = known.assign(**{k: defaults[k] for k in TEACHER_KNOBS if k not in known})
    rows, measured = [], {}
    for spec in {(s.method, s.env_id): s for s in specs}.values():
        settings = spec.resolved_settings()
        if not METHODS[spec.algo].teaches(settings):
            continue
        key = (spec.env_id, dict(spec.settings).get("teacher") or "",
               *[float(settings[k]) for k in TEACHER_KNOBS], spec.eval_episodes)  # fmt: skip
        if key not in measured:
            same = known[(known[keys] == pd.Series(key, keys)).all(axis=1)] if len(known) else known
            measured[key] = (
                same.iloc[0][["success_rate", "return_mean", "length_mean"]].to_dict()
                if len(same)
                else _teacher_on_held_out(spec, settings, key[1] or None)
            )
        rows.append({"method": spec.method, **dict(zip(keys, key)), **measured[key]})
    table = pd.DataFrame(rows)
    if len(table):
        write_csv(path, table)
    return table


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m hapo_rl.experiment", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="experiment file (TOML)")
    parser.add_argument(
        "--out", type=Path, default=None, help="results folder (default: results/<file stem>)"
    )
    parser.add_argument(
        "--profile", default=None, help="a [profiles.NAME] table of the file to apply"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="runs at once, local backend (default: cores)",
    )
    parser.add_argument(
        "--methods", nargs="+", default=None, metavar="NAME", help="run only these methods"
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=None, metavar="N", help="run only these seeds"
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=None,
        help=f"start a run only while {SLACK} times its projected time (as --estimate, from "
        "--timings) fits in what is left of this many hours; the rest wait for a rerun "
        "(local backend)",
    )
    parser.add_argument(
        "--backend", choices=("local", "ray"), default="local", help="local processes or Ray tasks"
    )
    parser.add_argument(
        "--address", default=None, help="Ray cluster address (default: a local Ray instance)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the grid and its env steps; run nothing"
    )
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="print the grid's projected CPU hours and its wall-clock on --workers workers, "
        "from the runs timed under --timings; run nothing",
    )
    parser.add_argument(
        "--timings",
        type=Path,
        default=Path("results"),
        help="folder whose finished runs (summary.json) time --estimate (default: results)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    begun = time.monotonic()
    try:
        args = build_parser().parse_args(argv)
        if args.workers < 1:
            raise ExperimentError(f"--workers must be positive, got {args.workers}")
        if args.hours is not None and not args.hours > 0:
            raise ExperimentError(f"--hours must be positive, got {args.hours}")
        if args.hours is not None and args.backend == "ray":
            raise ExperimentError("--hours is for the local backend")
        experiment = load_experiment(args.file, args.profile)
        asked = _selected(experiment, args.methods, args.seeds)
    except (ExperimentError, UsageError) as exc:
        print(f"hapo_rl.experiment: error: {exc}", file=sys.stderr)
        return 2
    name, specs = experiment.name, experiment.specs
    out = (args.out or Path("results") / name).absolute()
    if args.estimate:
        table, line = estimate(asked, args.timings, args.workers)
        print(f"{name}" + (f" (profile {args.profile})" if args.profile else "") + ":")
        print(table.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
        print(line)
        return 0
    if args.dry_run:
        wm = max(len(s.method) for s in specs)
        we = max(len(s.env_id) for s in specs)
        for s in asked:
            settings = " ".join(f"{k}={v}" for k, v in s.settings)
            status = "stale" if s.mismatch(out) else s.status(out)
            print(
                f"{status:<8} {s.method:<{wm}} {s.env_id:<{we}} seed {s.seed:<3} "
                f"{s.total_steps:>11,} steps  {settings}"
            )
        print(
            f"{len(asked)} runs, {sum(s.total_steps for s in asked):,} env steps in all "
            "(evaluation not counted)"
        )
        return 0
    stale = [(s, d) for s in specs if (d := s.mismatch(out))]
    if stale:
        spec, diff = stale[0]
        print(
            f"hapo_rl.experiment: error: {spec.run_dir(out)} holds a different run ({diff}) "
            f"and {len(stale) - 1} more; use another --out or remove them",
            file=sys.stderr,
        )
        return 2
    write_json(
        out / "experiment.json",
        {k: v for k, v in dataclasses.asdict(experiment).items() if k != "specs"},
    )
    teacher_table(specs, out)  # first: a report on a sweep cut short sets runs against them
    todo = [s for s in asked if s.status(out) != "finished"]
    errors: dict[RunSpec, str] = {}
    bar = tqdm(total=len(todo), desc=name, unit="run", file=sys.stderr)
    commands = [s.command(out) for s in todo]
    left: list[int] = []
    active: set[int] = set()  # the local backend's runs started and not yet done
    seconds = _projected_seconds(todo, args.timings, out) if args.hours else []

    def postfix() -> None:
        finished = sum(s.status(out) == "finished" for s in asked)
        running = {"running": len(active)} if args.backend == "local" else {}
        bar.set_postfix(done=finished, **running, failed=len(errors))

    def started(i: int) -> None:
        active.add(i)
        postfix()

    def done(i: int, result: tuple[int, str]) -> None:
        active.discard(i)
        code, last_line = result
        if code in (INTERRUPTED, -signal.SIGINT):
            return  # stopped with the sweep: resumes from its checkpoint on the next start
        if code != 0:
            errors[todo[i]] = last_line or f"exit status {code}"
            tqdm.write(f"failed: {todo[i].run_dir(out)}: {errors[todo[i]]}", file=sys.stderr)
        tables(name, specs, out, errors)  # a sweep cut short still leaves its tables
        bar.update(1)
        postfix()
        if args.hours:  # a run just finished may time the waiting runs of its kind
            seconds[:] = _projected_seconds(todo, args.timings, out)

    postfix()

    start = time.perf_counter()
    signal.signal(signal.SIGTERM, _stop)  # kill or a cluster scheduler: as Ctrl-C
    try:
        if args.backend == "ray":
            _ray(todo, out, args.address, done)
        elif args.hours is None:
            _local(commands, args.workers, done, started=started)
        else:
            until = begun + 3600 * args.hours

            def fits(i: int) -> bool:  # NaN (never timed) fits nothing
                return time.monotonic() + SLACK * seconds[i] <= until

            left = _local(commands, args.workers, done, fits, started)
            bar.total -= len(left)  # the bar ends full: the last line counts those left
            postfix()
    except ExperimentError as exc:
        print(f"hapo_rl.experiment: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close()
        tables(name, specs, out, errors)
        finished = sum(s.status(out) == "finished" for s in asked)
        print(
            f"hapo_rl.experiment: interrupted: {finished}/{len(asked)} runs finished, the "
            "unfinished ones kept at their last checkpoints; rerun the same command to go on",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        bar.close()
    tables(name, specs, out, errors)
    finished = sum(s.status(out) == "finished" for s in asked)
    untimed = sum(np.isnan(seconds[i]) for i in left)
    print(
        f"{name}: {finished}/{len(asked)} runs finished, {len(errors)} failed, "
        + (f"{len(left)} not started (beyond --hours {args.hours:g}" if left else "")
        + (f"; {untimed} of them never timed under {args.timings} or {out}" if untimed else "")
        + ("), " if left else "")
        + f"in {time.perf_counter() - start:.0f} s -> {out}"
    )
    return 0 if finished == len(asked) else 1


if __name__ == "__main__":
    sys.exit(main())
