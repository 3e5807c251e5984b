"""An experiment's results folder, loaded: the tidy tables ``python -m hapo_rl.experiment``
writes, checked, with every finished run's curve placed on the evaluation grid (``Results``).
The bottom of the report: it imports only ``stats``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hapo_rl.common.cli import UsageError
from hapo_rl.report.stats import injection_at_success, on_grid, steps_to

SUCCESS, RETURN = "eval_success_rate", "eval_return_mean"
GREEDY = "eval_greedy_success_rate"  # runs before greedy evaluation was recorded lack it
REPS = 10_000


@dataclass
class Results:
    """An experiment's finished runs, and the runs of its grid that are not."""

    name: str
    folder: Path
    experiment: dict[str, Any]
    curves: pd.DataFrame  # finished runs only, evaluations placed on the grid
    gate: pd.DataFrame
    runs: pd.DataFrame  # one row per finished run: method, env_id, seed, git_commit, run_dir
    budget: int  # env steps per run
    left_out: list[str] = field(default_factory=list)
    teachers: pd.DataFrame = field(default_factory=pd.DataFrame)  # teachers.csv, if any
    headline: str = SUCCESS  # the success column verdicts use: GREEDY where every run says so

    @property
    def methods(self) -> list[str]:
        return [m for m in self.experiment["methods"] if m in set(self.runs["method"])]

    @property
    def tasks(self) -> list[str]:
        return [t for t in self.experiment["tasks"] if t in set(self.runs["env_id"])]

    @property
    def reference(self) -> str:
        return self.experiment["reference"]

    @property
    def modes(self) -> list[tuple[str, str]]:
        """The evaluation modes every run recorded, as (name, success column), the headline's
        first."""
        other = GREEDY if self.headline == SUCCESS else SUCCESS
        recorded = other in self.curves and bool(self.curves[other].notna().all())
        names = {SUCCESS: "sampled", GREEDY: "greedy"}
        return [(names[c], c) for c in (self.headline, *[other] * recorded)]

    @property
    def cpu_hours(self) -> float:
        """Finished runs' wall time at their last evaluation, summed, in hours (a run uses one
        core; time lost to interruptions is not counted)."""
        return (
            float(self.curves.groupby(["method", "env_id", "seed"])["wall_time_s"].max().sum())
            / 3600
        )

    def final(self, method: str, column: str) -> list[np.ndarray]:
        """Per task, the last evaluation's ``column`` of each finished run of ``method``."""
        last = self.curves.sort_values("step").groupby(["method", "env_id", "seed"]).tail(1)
        mine = last[last["method"] == method]
        return [mine.loc[mine["env_id"] == t, column].to_numpy(float) for t in self.tasks]

    def per_run(self, method: str, stat: Callable[[pd.DataFrame], float]) -> list[np.ndarray]:
        """Per task, ``stat`` of each finished run's curve (NaN results dropped)."""
        mine = self.curves[self.curves["method"] == method]
        values = [
            np.array([stat(c.sort_values("step")) for _, c in mine[mine["env_id"] == t].groupby(
                "seed")], float)
            for t in self.tasks
        ]  # fmt: skip
        return [v[~np.isnan(v)] for v in values]

    def injection_at(self, method: str, low: float, high: float) -> list[np.ndarray]:
        """Per task with such runs, each run's mean injection rate over its evaluation
        intervals with training success in ``[low, high)`` (``injection_at_success``)."""
        runs = self.per_run(method, lambda c: injection_at_success(c, low, high))
        return [v for v in runs if len(v)]

    def steps_to(
        self, method: str, threshold: float, column: str | None = None
    ) -> list[np.ndarray]:
        """Per task, each finished run's env steps to reach ``threshold`` success in ``column``
        (the headline one by default; inf: never), at the steps the evaluations were made."""
        raw = self.curves.drop_duplicates(["method", "env_id", "seed", "eval_step"])
        mine = raw[raw["method"] == method].assign(step=lambda c: c["eval_step"])
        return [
            np.array(
                [
                    steps_to(c.sort_values("step"), threshold, column or self.headline)
                    for _, c in g.groupby("seed")
                ],
                float,
            )
            for t in self.tasks
            for g in [mine[mine["env_id"] == t]]
        ]

    def reached(self, method: str, threshold: float, column: str | None = None) -> str:
        """How many of the method's finished runs reach ``threshold`` success in ``column``
        (the headline one by default) within the budget, as "k/n"."""
        steps = self.steps_to(method, threshold, column)
        return f"{sum(int((s <= self.budget).sum()) for s in steps)}/{sum(map(len, steps))}"


#: The columns of ``runs.csv`` and ``curves.parquet`` a report reads.
RUN_COLUMNS = ("method", "env_id", "seed", "status", "error", "eval_every", "total_steps")
CURVE_COLUMNS = ("method", "env_id", "seed", "step", "teacher_steps", "eval_success_rate")


def _read(path: Path, read: Callable[[Path], Any], needs: type | tuple[str, ...]) -> Any:
    """``read(path)``, checked to be a ``needs`` (a type, or a table with these columns);
    ``UsageError`` saying how to rebuild it if it is not."""
    try:
        data = read(path)
    except Exception as exc:  # a damaged file: any of pandas', pyarrow's or json's errors
        why = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    else:
        if isinstance(needs, type):
            why = None if isinstance(data, needs) else f"not a JSON {needs.__name__}"
        else:
            lack = [c for c in needs if c not in data.columns]
            why = f"no {', '.join(lack)} column" if lack else None
        if why is None:
            return data
    raise UsageError(
        f"{path} is damaged ({why}); rerun the experiment's command, which skips its finished "
        "runs and rewrites its tables"
    )


class NothingFinished(UsageError):
    """An experiment's results folder in which no run has finished yet."""


def load(folder: Path) -> Results:
    """Read an experiment's results folder; ``UsageError`` if it is not one, ``NothingFinished``
    if no run of it has finished yet."""
    needed = ("experiment.json", "runs.csv", "curves.parquet")
    missing = [n for n in needed if not (folder / n).is_file()]
    if (folder / "experiment.json").is_file() and missing:  # the runner writes those at a run's end
        raise NothingFinished(f"{folder}: no run has finished yet; nothing to report")
    if not folder.is_dir() or missing:
        raise UsageError(
            f"{folder} is not an experiment's results folder (missing {', '.join(missing)}); "
            "make one with python -m hapo_rl.experiment"
        )
    experiment = _read(folder / "experiment.json", lambda p: json.loads(p.read_text()), dict)
    runs = _read(folder / "runs.csv", pd.read_csv, RUN_COLUMNS)
    curves = _read(folder / "curves.parquet", pd.read_parquet, CURVE_COLUMNS)
    every, budget = int(runs["eval_every"].iloc[0]), int(runs["total_steps"].max())
    finished = runs[runs["status"] == "finished"]
    left_out = [
        f"{r.method} on {r.env_id} seed {r.seed}: {r.status}"
        + (f" ({r.error})" if isinstance(r.error, str) and r.error else "")
        for r in runs.itertuples()
        if r.status != "finished"
    ]
    keys = ["method", "env_id", "seed"]
    done = curves.merge(finished[keys], on=keys).sort_values([*keys, "step"])
    delta = done.groupby(keys)[["teacher_steps", "step"]].diff()  # between evaluations
    done["teacher_share"] = delta["teacher_steps"] / delta["step"]
    done = (
        pd.concat(
            [on_grid(c, every, budget) for _, c in done.groupby(keys)],
            ignore_index=True,
        )
        if len(done)
        else done
    )
    gate_file = folder / "gate.parquet"
    gate = (
        pd.read_parquet(gate_file).merge(finished[keys], on=keys)
        if gate_file.is_file()
        else (pd.DataFrame())
    )
    commits, headlines = [], set()
    for r in finished.itertuples():
        run_dir = folder / r.method / r.env_id.split(":")[-1] / f"s{r.seed}"
        path = run_dir / "config.json"
        config = json.loads(path.read_text()) if path.is_file() else {}
        headlines.add(config.get("headline_eval", "sampled"))  # runs before it: sampled
        commits.append(
            {"run_dir": str(run_dir.relative_to(folder)), "git_commit": config.get("git_commit")}
        )
    run_table = (
        pd.concat([finished[keys].reset_index(drop=True), pd.DataFrame(commits)], axis=1)
        if len(finished)
        else pd.DataFrame(columns=[*keys, "run_dir", "git_commit"])
    )
    if not len(run_table):
        raise NothingFinished(f"{folder}: no run has finished yet; nothing to report")
    teachers = folder / "teachers.csv"
    greedy = headlines == {"greedy"} and GREEDY in done and done[GREEDY].notna().all()
    return Results(
        folder.name, folder, experiment, done, gate, run_table, budget, left_out,
        pd.read_csv(teachers) if teachers.is_file() else pd.DataFrame(),
        GREEDY if greedy else SUCCESS,
    )  # fmt: skip


def experiment_folders(root: Path = Path("results")) -> list[Path]:
    """The experiments' results folders under ``root``."""
    return sorted(p.parent for p in root.glob("*/experiment.json"))
