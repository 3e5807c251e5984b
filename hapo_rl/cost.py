"""What a grid of runs will cost, projected from runs already timed: CPU hours, and the
wall-clock on N workers.

A run's cost is its budget times the seconds per env step (evaluation included; the median
over the runs) of the timed runs of the same algorithm on the same task nearest to it: first
in settings (the fewest that differ: BC's passes over its data, the group sizes), then in
budget, then in evaluation episodes per env step. The cost per step
changes as a run learns, in either direction: a policy that has learnt ends its episodes
sooner, but a group method's all-failure groups carry no gradient, so its updates cost more
once groups succeed (projected from 20k-step runs, the second-edition MiniGrid sweeps took
1.3 to 2.6 times the estimate). Evaluation often costs more than training (a failing policy
runs every held-out episode to the step limit), so a protocol that evaluates more often costs
more per step. Time a few runs of the grid's own protocol first: they are then the nearest.
The figures are a planning estimate, not a measurement.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = [
    "algo",
    "env_id",
    "total_steps",
    "wall_time_s",
    "eval_every",
    "eval_episodes",
    "settings",
]


def timed_runs(*roots: Path) -> pd.DataFrame:
    """Every finished run under the ``roots`` (once where they overlap): algo, env_id,
    total_steps and wall_time_s from its ``summary.json``, eval_every, eval_episodes and
    settings from the ``config.json`` beside it (unreadable runs skipped)."""
    rows = []
    for path in sorted({p.resolve() for root in roots for p in root.rglob("summary.json")}):
        try:
            s = json.loads(path.read_text())
            config = json.loads(path.with_name("config.json").read_text())
            row = {k: {"settings": {}, **config, **s}[k] for k in COLUMNS}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(row["settings"], dict):
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _budget(steps: float) -> float:
    """A budget to two significant figures: BC's runs end a few steps past theirs."""
    return float(f"{steps:.2g}")


def _differ(saved: dict[str, Any], want: dict[str, Any]) -> int:
    """How many of ``want``'s settings a run's saved ones give another value (a setting the
    run did not record, being older than it, is not counted)."""
    return sum(k in saved and saved[k] != v for k, v in want.items())


def step_cost(timed: pd.DataFrame, spec: Any) -> tuple[float, int, str, int, int]:
    """For ``spec`` (a ``RunSpec``): the median seconds per env step of the timed runs of its
    algo and task nearest it (fewest settings that differ, then budget, then evaluation
    episodes per env step), their budget, evaluation ("50/5,000": episodes every so many
    steps), number of runs and settings that differ; NaN and zeros if none is timed."""
    runs = timed[(timed["algo"] == spec.algo) & (timed["env_id"] == spec.env_id)]
    runs = runs[runs["total_steps"] > 0]
    if runs.empty:
        return float("nan"), 0, "", 0, 0
    want = spec.resolved_settings()
    density = np.log(runs["eval_episodes"] / runs["eval_every"])
    runs = runs.assign(
        budget=runs["total_steps"].map(_budget),
        differ=runs["settings"].map(lambda saved: _differ(saved, want)),
        density_gap=(density - np.log(spec.eval_episodes / spec.eval_every)).abs(),
    )
    runs = runs.assign(
        budget_gap=(np.log(runs["budget"]) - np.log(spec.total_steps)).abs().round(6)
    )
    nearest = runs.sort_values(["differ", "budget_gap", "density_gap"]).iloc[0]
    protocol = ["differ", "budget", "eval_every", "eval_episodes"]
    top = runs[(runs[protocol] == nearest[protocol]).all(axis=1)]
    rate = float(np.median(top["wall_time_s"] / top["total_steps"]))
    evaluation = f"{nearest['eval_episodes']:.0f}/{nearest['eval_every']:,.0f}"
    return rate, int(nearest["budget"]), evaluation, len(top), int(nearest["differ"])


def makespan(seconds: Sequence[float], workers: int) -> float:
    """The wall-clock of running jobs of these lengths on ``workers`` workers, each job given
    to the first free worker, longest first."""
    free = [0.0] * min(workers, max(len(seconds), 1))
    for s in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def estimate(specs: Iterable[Any], root: Path, workers: int) -> tuple[pd.DataFrame, str]:
    """Per method and task of ``specs`` (``RunSpec``s): runs, budget, the timing used and the
    projected CPU hours; and a closing line with the totals and the wall-clock on
    ``workers`` workers."""
    timed = timed_runs(root)
    rows, seconds, unmeasured = [], [], 0
    for spec in specs:
        rate, timed_at, timed_eval, n, differ = step_cost(timed, spec)
        if np.isnan(rate):
            unmeasured += 1
        else:
            seconds.append(rate * spec.total_steps)
        rows.append(
            {
                "method": spec.method,
                "env_id": spec.env_id,
                "total_steps": spec.total_steps,
                "timed_at": timed_at,
                "timed_eval": timed_eval,
                "timed_runs": n,
                "settings_differ": differ,
                "s_per_1k_steps": 1000 * rate,
                "cpu_hours": rate * spec.total_steps / 3600,
            }
        )
    table = (
        pd.DataFrame(rows)
        .groupby(["method", "env_id"], sort=False)
        .agg(
            runs=("total_steps", "size"),
            total_steps=("total_steps", "first"),
            timed_at=("timed_at", "first"),
            timed_eval=("timed_eval", "first"),
            timed_runs=("timed_runs", "first"),
            settings_differ=("settings_differ", "first"),
            s_per_1k_steps=("s_per_1k_steps", "first"),
            cpu_hours=("cpu_hours", "sum"),
        )
        .reset_index()
    )
    total = sum(seconds) / 3600
    wall = makespan(seconds, workers) / 3600 if seconds else 0.0
    longest = max(seconds, default=0.0) / 3600
    line = (
        f"{len(rows)} runs: {total:,.1f} CPU hours projected from the runs timed in {root}; "
        f"{wall:,.1f} h wall-clock on {workers} workers (longest run {longest:.1f} h)"
        + (f"; {unmeasured} runs have no timed run of their algo and task" if unmeasured else "")
    )
    return table, line
