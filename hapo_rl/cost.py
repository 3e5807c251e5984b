"""What a grid of runs will cost, projected from runs already timed: CPU hours, and the
wall-clock on N workers.

A run's cost is its budget times the seconds per env step (evaluation included) of the timed
runs of the same algorithm on the same task, taken at the largest budget timed (the median
over those runs). Evaluation is a larger share of a short run than of a long one, and a policy
that has learnt ends its episodes sooner, so projecting a 2M-step run from a 50k-step one
overstates it; the figures are a planning estimate, not a measurement.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def timed_runs(root: Path) -> pd.DataFrame:
    """Every finished run under ``root``: algo, env_id, total_steps and wall_time_s from its
    ``summary.json`` (unreadable ones skipped)."""
    rows = []
    for path in sorted(root.rglob("summary.json")):
        try:
            s = json.loads(path.read_text())
            rows.append({k: s[k] for k in ("algo", "env_id", "total_steps", "wall_time_s")})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return pd.DataFrame(rows, columns=["algo", "env_id", "total_steps", "wall_time_s"])


def step_costs(timed: pd.DataFrame) -> dict[tuple[str, str], tuple[float, int, int]]:
    """Per (algo, env_id): the median seconds per env step of the runs at the largest budget
    timed, that budget and the number of those runs."""
    costs = {}
    for key, runs in timed[timed["total_steps"] > 0].groupby(["algo", "env_id"]):
        top = runs[runs["total_steps"] == runs["total_steps"].max()]
        rate = float(np.median(top["wall_time_s"] / top["total_steps"]))
        costs[key] = (rate, int(top["total_steps"].iloc[0]), len(top))
    return costs


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
    costs = step_costs(timed_runs(root))
    rows, seconds, unmeasured = [], [], 0
    for spec in specs:
        rate, timed_at, n = costs.get((spec.algo, spec.env_id), (float("nan"), 0, 0))
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
                "timed_runs": n,
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
            timed_runs=("timed_runs", "first"),
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
