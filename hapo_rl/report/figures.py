"""The report's figures: learning curves with IQM bands, HAPO's own evidence (injection, teacher
share, gated start states, gate posteriors), performance profiles and aggregate intervals.

matplotlib only (no LaTeX needed); each figure is saved as vector PDF and as PNG. One colour per
method, the same in every figure: the Okabe-Ito colour-blind-safe palette for the named methods,
seaborn's colour-blind palette (with dashes once it repeats) for any other method name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from rliable import library, plot_utils  # noqa: E402

from hapo_rl.core.gate import group_mean_rate  # noqa: E402
from hapo_rl.methods import METHODS, group_mean_gated, posterior_gated  # noqa: E402
from hapo_rl.report.results import GREEDY, Results  # noqa: E402
from hapo_rl.report.stats import curve_band, iqm, iqm_estimate, mean_estimate, seeded  # noqa: E402

OKABE_ITO = {
    "hapo": "#D55E00",
    "grpo": "#0072B2",
    "ppo": "#000000",
    "always-inject": "#E69F00",
    "mixed": "#CC79A7",
    "bc": "#009E73",
    "bc-grpo": "#56B4E9",
    "jsrl": "#999999",
}
STYLES = {
    "paper": {"width": 3.4, "font": 8, "line": 1.2},
    "slides": {"width": 6.4, "font": 14, "line": 2.0},
}


def _near(a: str, b: str, limit: int = 60) -> bool:
    """Whether two hex colours are within ``limit`` in every RGB channel."""
    return all(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) < limit for i in (1, 3, 5))


def colours(methods: list[str]) -> dict[str, tuple[str, str]]:
    """A (colour, line style) per method, fixed by the method's name and the method order:
    other names take the palette's colours unlike those of the named methods present."""
    others = [m for m in methods if m not in OKABE_ITO]
    taken = [OKABE_ITO[m] for m in methods if m in OKABE_ITO]
    palette = [
        c for c in sns.color_palette("colorblind", 10).as_hex()
        if not any(_near(c, t) for t in taken)
    ]  # fmt: skip
    style = {m: (c, "-") for m, c in OKABE_ITO.items()}
    for i, m in enumerate(others):
        style[m] = (palette[i % len(palette)], "-" if i < len(palette) else "--")
    return {m: style[m] for m in methods}


@contextmanager
def _style(name: str) -> Iterator[dict[str, float]]:
    s = STYLES[name]
    rc = {
        "font.size": s["font"],
        "axes.titlesize": s["font"],
        "axes.labelsize": s["font"],
        "legend.fontsize": s["font"] * 0.85,
        "xtick.labelsize": s["font"] * 0.9,
        "ytick.labelsize": s["font"] * 0.9,
        "lines.linewidth": s["line"],
        "pdf.fonttype": 42,
        "text.usetex": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with plt.rc_context(rc):
        yield s


def _save(fig: plt.Figure, folder: Path, stem: str) -> list[Path]:
    paths = [folder / f"{stem}.pdf", folder / f"{stem}.png"]
    for p in paths:  # no creation date: regenerating gives the same files
        meta = {"CreationDate": None} if p.suffix == ".pdf" else {"Software": None}
        fig.savefig(p, bbox_inches="tight", dpi=200, metadata=meta)
    plt.close(fig)
    return paths


def _short(env_id: str) -> str:
    return env_id.split(":")[-1].removeprefix("MiniGrid-").removesuffix("-v0")


def _runs_on_common_grid(results: Results, method: str, task: str, column: str):
    """Steps and a (runs, points) array of ``column`` on the points every run has."""
    c = results.curves
    mine = c[(c["method"] == method) & (c["env_id"] == task)]
    if mine.empty:
        return None, None
    steps = sorted(set.intersection(*[set(g["step"]) for _, g in mine.groupby("seed")]))
    runs = [g.set_index("step").loc[steps, column].to_numpy(float) for _, g in mine.groupby("seed")]
    return np.array(steps), np.stack(runs)


def _success_label(results: Results) -> str:
    return "held-out success" + (", greedy" if results.headline == GREEDY else "")


def learning_curves(results: Results, folder: Path, style: str, reps: int) -> list[Path]:
    """Per task: held-out success, IQM over runs with a 95% band, against total env steps."""
    paths = []
    palette = colours(results.experiment["methods"])
    for task in results.tasks:
        with _style(style) as s:
            fig, ax = plt.subplots(figsize=(s["width"], s["width"] * 0.72))
            for m in results.methods:
                steps, runs = _runs_on_common_grid(results, m, task, results.headline)
                if steps is None:
                    continue
                point, band = curve_band(list(runs), reps=reps)
                colour, dash = palette[m]
                ax.plot(steps, point, color=colour, ls=dash, label=f"{m} ({len(runs)})")
                ax.fill_between(steps, band[0], band[1], color=colour, alpha=0.2, lw=0)
            ax.set(
                xlabel="env steps (teacher steps included)",
                ylabel=_success_label(results) + " (IQM)",
                title=_short(task),
                ylim=(-0.02, 1.02),
            )
            ax.legend(frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.22))
            paths += _save(fig, folder, f"curves_{_short(task)}")
    return paths


def hapo_evidence(results: Results, folder: Path, style: str) -> list[Path]:
    """Per task, for methods with a gate: success, injection rate, teacher share of env steps
    and start states still gated on, against env steps (IQM over runs)."""
    c = results.curves
    gated = [m for m in results.methods if c.loc[c["method"] == m, "gated_states"].notna().any()]
    palette = colours(results.experiment["methods"])
    panels = [
        (results.headline, _success_label(results)),
        ("injection_rate", "injection rate"),
        ("teacher_share", "teacher share of env steps"),
        ("gated_states", "start states gated on"),
    ]
    paths = []
    for task in results.tasks:
        if not gated:
            break
        with _style(style) as s:
            fig, axes = plt.subplots(1, 4, figsize=(s["width"] * 2, s["width"] * 0.55))
            for m in gated:
                mine = c[(c["method"] == m) & (c["env_id"] == task)].copy()
                if mine.empty:
                    continue
                for ax, (column, label) in zip(axes, panels):
                    by_step = mine.groupby("step")[column].apply(
                        lambda v: iqm(v.dropna()) if v.notna().any() else np.nan
                    )
                    colour, dash = palette[m]
                    ax.plot(by_step.index, by_step.to_numpy(), color=colour, ls=dash, label=m)
                    ax.set(xlabel="env steps", title=label)
            fig.suptitle(_short(task))
            fig.tight_layout()
            handles, labels = axes[0].get_legend_handles_labels()
            fig.legend(handles, labels, frameon=False, ncols=6, loc="upper center",
                       bbox_to_anchor=(0.5, 0.0))  # fmt: skip
            paths += _save(fig, folder, f"hapo_evidence_{_short(task)}")
    return paths


def _snapshots_at(gate: pd.DataFrame, step: int, final: bool) -> pd.DataFrame:
    """Each run's last gate snapshot at or before ``step`` (with ``final``, its last one)."""
    frames = []
    for _, run in gate.groupby("seed"):
        steps = run["step"].to_numpy()
        chosen = steps.max() if final else steps[steps <= step].max(initial=-1)
        frames.append(run[run["step"] == chosen])
    return pd.concat(frames)


def gate_posteriors(results: Results, folder: Path, style: str) -> list[Path]:
    """Per task, the reference method's gate posterior means over the training pool's start
    states seen so far, at a quarter, half, three quarters and all of the budget (each finished
    run's last snapshot by then, pooled); none where its injections do not follow them."""
    g = results.gate
    gated = posterior_gated(results.experiment["methods"])
    if g.empty or results.reference not in set(g["method"]) & gated:
        return []
    paths = []
    for task in results.tasks:
        mine = g[(g["method"] == results.reference) & (g["env_id"] == task)]
        if mine.empty:
            continue
        picks = [int(q * results.budget) for q in (0.25, 0.5, 0.75, 1.0)]
        with _style(style) as s:
            fig, axes = plt.subplots(
                1, len(picks), figsize=(s["width"] * 2, s["width"] * 0.5), sharey=True
            )
            for ax, step in zip(np.atleast_1d(axes), picks):
                at = _snapshots_at(mine, step, final=step == picks[-1])
                mean = at["alpha"] / (at["alpha"] + at["beta"])
                ax.hist(mean, bins=np.linspace(0, 1, 21), color=OKABE_ITO["hapo"])
                ax.set(title=f"by {step / 1e3:,.0f}k steps", xlabel="posterior mean success")
                ax.text(0.98, 0.95, f"{len(at)} states", ha="right", va="top",
                        transform=ax.transAxes)  # fmt: skip
            np.atleast_1d(axes)[0].set_ylabel("start states")
            fig.suptitle(f"{results.reference} gate posteriors, {_short(task)}")
            fig.tight_layout()
            paths += _save(fig, folder, f"gate_posteriors_{_short(task)}")
    return paths


def _final_pooled(results: Results) -> dict[str, np.ndarray]:
    return {m: np.concatenate(results.final(m, results.headline))[:, None] for m in results.methods}


def performance_profile(results: Results, folder: Path, style: str, reps: int) -> list[Path]:
    """Fraction of runs (all tasks) with final held-out success above tau (rliable)."""
    scores = _final_pooled(results)
    taus = np.linspace(0.0, 1.0, 41)
    with seeded(0):
        profiles, cis = library.create_performance_profile(scores, taus, reps=reps)
    palette = colours(results.experiment["methods"])
    with _style(style) as s:
        fig, ax = plt.subplots(figsize=(s["width"], s["width"] * 0.72))
        plot_utils.plot_performance_profiles(
            profiles, taus, performance_profile_cis=cis, ax=ax,
            colors={m: palette[m][0] for m in scores}, xlabel=r"held-out success $\tau$",
            ylabel=r"fraction of runs with success $> \tau$", labelsize=s["font"],
            ticklabelsize=s["font"] * 0.9,
        )  # fmt: skip
        ax.legend(
            [plt.Line2D([], [], color=palette[m][0]) for m in scores], list(scores), frameon=False
        )
        return _save(fig, folder, "performance_profile")


def aggregate_intervals(results: Results, folder: Path, style: str, reps: int) -> list[Path]:
    """IQM and mean of final held-out success over all runs, with 95% stratified-bootstrap
    intervals, drawn with rliable's plot."""
    per_task = {m: [s for s in results.final(m, results.headline) if len(s)] for m in
                results.methods}  # fmt: skip
    estimates = {m: (iqm_estimate(x, reps), mean_estimate(x, reps)) for m, x in per_task.items()}
    points = {m: np.array([e.value for e in pair]) for m, pair in estimates.items()}
    intervals = {m: np.array([[e.low for e in pair], [e.high for e in pair]])
                 for m, pair in estimates.items()}  # fmt: skip
    palette = colours(results.experiment["methods"])
    with _style(style) as s:
        fig, _ = plot_utils.plot_interval_estimates(
            points, intervals, ["IQM", "Mean"], algorithms=list(per_task),
            colors={m: palette[m][0] for m in per_task}, xlabel="final held-out success",
            subfigure_width=s["width"] * 0.8, row_height=0.3 * s["font"] / 8,
        )  # fmt: skip
        return _save(fig, folder, "aggregate_intervals")


#: Training success bins of ``injection_vs_success``.
SUCCESS_BINS = np.linspace(0.0, 1.0, 21)


def injection_vs_success(results: Results, folder: Path, style: str, reps: int) -> list[Path]:
    """For experiments with the paper's v1 gate: the injection rate (share of groups given a
    teacher episode) of each teacher-using method against its training success rate, the mean
    over runs with a 95% band, under the v1 rule's analytic rate and the share of groups that
    fail outright, ``(1 - p)^N``."""
    v1 = group_mean_gated(results.experiment["methods"])
    if not v1:
        return []
    palette = colours(results.experiment["methods"])
    with _style(style) as s:
        fig, ax = plt.subplots(figsize=(s["width"], s["width"] * 0.72))
        centres = (SUCCESS_BINS[:-1] + SUCCESS_BINS[1:]) / 2
        for m in results.methods:
            if not METHODS[results.experiment["methods"][m]["algo"]].uses_teacher:
                continue
            points, lows, highs, xs = [], [], [], []
            for x, lo, hi in zip(centres, SUCCESS_BINS[:-1], SUCCESS_BINS[1:]):
                top = hi + 1e-9 if hi >= 1.0 else hi  # the last bin holds success 1
                per_task = results.injection_at(m, lo, top)
                if per_task:
                    e = mean_estimate(per_task, reps)
                    xs.append(x), points.append(e.value), lows.append(e.low), highs.append(e.high)
            colour, dash = palette[m]
            ax.plot(xs, points, color=colour, ls=dash, marker="o", ms=2, label=m)
            ax.fill_between(xs, lows, highs, color=colour, alpha=0.2, lw=0)
        p = np.linspace(0.0, 1.0, 201)
        for n, tau in sorted({(c.group_size, c.tau) for c in v1.values()}):
            ax.plot(p, group_mean_rate(p, n, tau), color="black", lw=0.8,
                    label=f"v1 rule, analytic: P((1+S)/{n + 2} < {tau})")  # fmt: skip
            ax.plot(p, (1 - p) ** n, color="grey", lw=0.8, ls=":",
                    label=f"all {n} episodes fail: (1 - p)^{n}")  # fmt: skip
        ax.set(xlabel="training success rate", ylabel="injection rate", ylim=(-0.02, 1.02))
        ax.legend(frameon=False, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.22))
        return _save(fig, folder, "injection_vs_success")


def draw_all(results: Results, folder: Path, style: str, reps: int = 2_000) -> list[Path]:
    """Every figure into ``folder``; returns the files written."""
    return [
        *learning_curves(results, folder, style, reps),
        *hapo_evidence(results, folder, style),
        *gate_posteriors(results, folder, style),
        *performance_profile(results, folder, style, reps),
        *aggregate_intervals(results, folder, style, reps),
        *injection_vs_success(results, folder, style, reps),
    ]
