"""Statistics over an experiment's tidy results, after rliable: seeds are the runs, tasks the
strata, never evaluation episodes.

Every point estimate is an interquartile mean (IQM) over runs, pooled over tasks for the
aggregates, or rliable's probability of improvement; every interval a 95% percentile stratified
bootstrap that resamples runs within each task, independently per method (so tasks may have
different numbers of finished runs). The bootstrap is rliable's
``StratifiedIndependentBootstrap`` vectorised in numpy: rliable hands it to arch, which loops
in Python (~60 us a replication, 74 s for one improvement table of the 16-run smoke
experiment); the test suite checks that both give the same intervals.

Statistics are rounded to ``DIGITS`` decimals before percentiles are taken and estimates
returned: numpy's reductions sum in an order that depends on the CPU's vector width, and the
discrete success rates put many intervals' ends exactly on a printed rounding boundary (0.895),
so unrounded tables would differ between machines in the last printed digit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval."""

    value: float
    low: float
    high: float


#: Decimals every statistic is rounded to (far below the printed two, far above float noise).
DIGITS = 9


def settled(x: Any) -> Any:
    """``x`` rounded to ``DIGITS`` decimals, so it is the same double on every machine."""
    return np.round(x, DIGITS)


def iqm(values: np.ndarray, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50% of the values, as rliable's
    ``aggregate_iqm`` (scipy's ``trim_mean`` cutting 25% at each end) without its per-call
    overhead. Of all values, or along ``axis``."""
    ax = 0 if axis is None else axis
    x = np.sort(np.ravel(values) if axis is None else np.asarray(values), axis=ax).astype(float)
    n = x.shape[ax]
    middle = np.take(x, range(int(0.25 * n), n - int(0.25 * n)), axis=ax).mean(axis=ax)
    return float(middle) if axis is None else middle


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block, then restore it: rliable's performance
    profile bootstrap draws from it whatever ``random_state`` says."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


#: A statistic of samples given as 2-D arrays, one row per replication: returns one value a row.
Statistic = Callable[..., np.ndarray]


def resample(arrays: Sequence[np.ndarray], reps: int, seed: int) -> list[np.ndarray]:
    """``reps`` bootstrap samples of each array (drawn with replacement, within each array):
    arrays of shape (reps, len(array))."""
    rng = np.random.default_rng(seed)
    return [np.asarray(a, float)[rng.integers(0, len(a), (reps, len(a)))] for a in arrays]


def _interval(arrays: Sequence[np.ndarray], stat: Statistic, reps: int, seed: int) -> Estimate:
    """``stat`` of the arrays with its percentile stratified-bootstrap interval."""
    value = settled(stat(*[np.asarray(a, float)[None, :] for a in arrays])[0])
    low, high = settled(np.percentile(settled(stat(*resample(arrays, reps, seed))), [2.5, 97.5]))
    return Estimate(float(value), float(low), float(high))


def _row_iqm(*samples: np.ndarray) -> np.ndarray:
    """IQM of each row of the samples side by side."""
    return iqm(np.concatenate(samples, axis=1), axis=1)


def iqm_estimate(per_task: Sequence[np.ndarray], reps: int = 10_000, seed: int = 0) -> Estimate:
    """IQM over all runs of all tasks, with a bootstrap that resamples runs within each task."""
    return _interval(per_task, _row_iqm, reps, seed)


def mean_estimate(per_task: Sequence[np.ndarray], reps: int = 10_000, seed: int = 0) -> Estimate:
    """Mean over all runs of all tasks, with the same bootstrap as ``iqm_estimate``."""
    return _interval(per_task, lambda *xs: np.concatenate(xs, axis=1).mean(axis=1), reps, seed)


def difference_estimate(
    per_task: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    reps: int = 10_000,
    seed: int = 0,
) -> Estimate:
    """IQM(per_task) - IQM(reference), both pooled over tasks, resampled independently."""
    n = len(per_task)
    return _interval(
        [*per_task, *reference], lambda *xs: _row_iqm(*xs[:n]) - _row_iqm(*xs[n:]), reps, seed
    )


def _row_improvement(n: int) -> Statistic:
    """rliable's probability of improvement of each row: P(X > Y) + P(X = Y)/2 for a run of X
    (the first ``n`` samples, one per task) against a run of Y (the rest) on the same task,
    averaged over tasks."""

    def stat(*xs: np.ndarray) -> np.ndarray:
        per_task = [
            ((a[:, :, None] > b[:, None, :]) + 0.5 * (a[:, :, None] == b[:, None, :])).mean((1, 2))
            for a, b in zip(xs[:n], xs[n:])
        ]
        return np.mean(per_task, axis=0)

    return stat


def improvement_estimate(
    x: Sequence[np.ndarray], y: Sequence[np.ndarray], reps: int = 2_000, seed: int = 0
) -> Estimate:
    """Probability that a run of ``x`` beats a run of ``y`` on the same task (ties count half),
    averaged over tasks, with a bootstrap resampling each method's runs per task."""
    return _interval([*x, *y], _row_improvement(len(x)), reps, seed)


def steps_to(curve: pd.DataFrame, threshold: float, column: str = "eval_success_rate") -> float:
    """Env steps at the first evaluation reaching ``threshold``; ``inf`` if none does."""
    hit = curve.loc[curve[column] >= threshold, "step"]
    return float(hit.iloc[0]) if len(hit) else float("inf")


#: Training success levels the consistency test reads the injection rate at, each with the
#: band of training success rates it averages over.
SUCCESS_BANDS = ((0.5, 0.45, 0.55), (0.8, 0.75, 0.85), (0.9, 0.85, 0.925), (0.95, 0.925, 0.975))


def injection_at_success(curve: pd.DataFrame, low: float, high: float) -> float:
    """A run's mean injection rate over its evaluation intervals whose training success rate
    lay in ``[low, high)``; NaN if none did."""
    c = curve.drop_duplicates("eval_step") if "eval_step" in curve else curve
    inside = c[(c["train_success_rate"] >= low) & (c["train_success_rate"] < high)]
    rates = inside["injection_rate"].dropna()
    return float(rates.mean()) if len(rates) else float("nan")


def on_grid(curve: pd.DataFrame, every: int, budget: int) -> pd.DataFrame:
    """The curve at each multiple of ``every`` up to ``budget``: the evaluation made for that
    point (the first at or after it: evaluations wait for the end of an update), and at
    ``budget`` the run's last evaluation. A point whose evaluation an update skipped gets the
    next one. ``eval_step`` keeps the step each evaluation was made at."""
    curve = curve.sort_values("step").assign(eval_step=lambda c: c["step"])
    grid = [*range(0, budget, every), budget]
    at = np.searchsorted(curve["step"].to_numpy(), grid[:-1], side="left")
    rows = [*np.minimum(at, len(curve) - 1), len(curve) - 1]
    return curve.iloc[rows].assign(step=grid).reset_index(drop=True)


def curve_band(
    runs: Sequence[np.ndarray], reps: int = 2_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per evaluation point, the IQM over runs and its 95% bootstrap band, from equal-length
    curves; returns ``(iqm, band)`` with ``band`` of shape (2, points)."""
    curves = np.stack(runs).astype(float)  # (runs, points)
    idx = np.random.default_rng(seed).integers(0, len(curves), (reps, len(curves)))
    boot = settled(iqm(curves[idx], axis=1))  # (reps, points)
    return settled(iqm(curves, axis=0)), settled(np.percentile(boot, [2.5, 97.5], axis=0))


def teacher_share(curve: pd.DataFrame, since: float) -> float:
    """Share of a run's env steps the teacher took after its last evaluation made at or before
    env step ``since`` (0: the whole run)."""
    start = curve[curve["eval_step"] <= since].iloc[-1]
    end = curve.iloc[-1]
    steps = end["eval_step"] - start["eval_step"]
    teacher = end["teacher_steps"] - start["teacher_steps"]
    return float(teacher / steps) if steps > 0 else float("nan")


def zero_advantage(curve: pd.DataFrame) -> float:
    """Mean over a run's evaluation intervals (each once, however many grid points it spans)
    of the share of groups whose advantages were all zero."""
    return float(curve.drop_duplicates("eval_step")["zero_adv_group_frac"].mean())


def last_injection(curve: pd.DataFrame) -> float:
    """A run's injection rate over its last evaluation interval that had an update."""
    known = curve["injection_rate"].dropna()
    return float(known.iloc[-1]) if len(known) else float("nan")
