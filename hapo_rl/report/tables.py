"""The report's tables, from ``Results``: final success and return, env steps to a level,
probability of improvement, HAPO's mechanism, methods against their teacher, ablations and the
consistency test; each written as Markdown and LaTeX (booktabs)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hapo_rl.core.gate import group_mean_rate
from hapo_rl.methods import METHODS, group_mean_gated
from hapo_rl.report.results import GREEDY, RETURN, SUCCESS, Results
from hapo_rl.report.stats import (
    SUCCESS_BANDS,
    Estimate,
    difference_estimate,
    improvement_estimate,
    iqm_estimate,
    last_injection,
    mean_estimate,
    teacher_share,
    zero_advantage,
)

THRESHOLDS = (0.5, 0.9)


def fmt_estimate(e: Estimate, digits: int = 2) -> str:
    """``value [low, high]``."""
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def fmt_steps(e: Estimate, budget: int) -> str:
    def one(v: float) -> str:
        return "never" if not math.isfinite(v) or v > budget else f"{v / 1e3:,.0f}k"

    return f"{one(e.value)} [{one(e.low)}, {one(e.high)}]"


def short_task(env_id: str) -> str:
    """The task's name without its namespace, family prefix and version."""
    return env_id.split(":")[-1].removeprefix("MiniGrid-").removesuffix("-v0")


@dataclass
class Table:
    """A table with its caption and footnotes, written as Markdown and LaTeX."""

    name: str
    caption: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]

    def markdown(self) -> str:
        lines = [f"**{self.caption}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join(" --- " for _ in self.header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += ["", *[f"{i + 1}. {n}" for i, n in enumerate(self.notes)]]
        return "\n".join(lines).rstrip() + "\n"

    def latex(self) -> str:
        def esc(text: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                         ("#", r"\#"), ("$", r"\$"), ("~", r"\textasciitilde{}")):  # fmt: skip
                text = text.replace(a, b)
            return text.replace("**", "")

        cols = "l" + "r" * (len(self.header) - 1)
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{esc(self.caption)}}}",
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            " & ".join(esc(h) for h in self.header) + r" \\",
            r"\midrule",
            *[" & ".join(esc(c) for c in r) + r" \\" for r in self.rows],
            r"\bottomrule",
            r"\end{tabular}",
        ]
        if self.notes:
            lines.append(r"\par\smallskip\footnotesize " + " ".join(esc(n) for n in self.notes))
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"


def _notes(results: Results) -> list[str]:
    notes = [
        "IQM over runs (seeds) with a 95% stratified-bootstrap interval (runs resampled within "
        "each task); 'all tasks' pools every task's runs."
    ]
    if results.headline == GREEDY:
        notes.append(
            "Success is with greedy (mean) actions, the convention for continuous control, in "
            "every table but the sampled one; each run's config.json says so (headline_eval)."
        )
    if results.left_out:
        notes.append(
            f"Left out, not finished ({len(results.left_out)} of "
            f"{len(results.left_out) + len(results.runs)} runs), listed in this folder's README.md."
        )
    return notes


def final_table(results: Results, column: str, label: str, reps: int) -> Table:
    """Final held-out ``column`` per method, per task and over all tasks."""
    tasks = results.tasks
    rows = []
    for m in results.methods:
        scores = results.final(m, column)
        cells = [fmt_estimate(iqm_estimate([s], reps)) if len(s) else "-" for s in scores]
        present = [s for s in scores if len(s)]
        rows.append([m, *cells, fmt_estimate(iqm_estimate(present, reps)), _n_runs(scores)])
    return Table(
        f"final_{column.removeprefix('eval_').removesuffix('_rate').removesuffix('_mean')}",
        f"Final held-out {label} ({results.name})",
        ["method", *map(short_task, tasks), "all tasks", "runs"],
        rows,
        _notes(results),
    )


def _n_runs(scores: list[np.ndarray]) -> str:
    return str(sum(len(s) for s in scores))


def efficiency_table(results: Results, threshold: float, reps: int) -> Table:
    """Env steps to reach ``threshold`` held-out success, runs that never do kept as such."""
    budget = results.budget
    rows = []
    for m in results.methods:
        # a run that never reaches it counts as 2x the budget, shown as "never"
        steps = [np.minimum(s, 2 * budget) for s in results.steps_to(m, threshold)]
        cells = [fmt_steps(iqm_estimate([s], reps), budget) if len(s) else "-" for s in steps]
        present = [s for s in steps if len(s)]
        every = fmt_steps(iqm_estimate(present, reps), budget)
        rows.append([m, *cells, every, results.reached(m, threshold)])
    return Table(
        f"steps_to_{round(threshold * 100)}",
        f"Env steps to {threshold:.0%} held-out success ({results.name})",
        ["method", *map(short_task, results.tasks), "all tasks", "runs reaching it"],
        rows,
        [*_notes(results), "never: the IQM (or bound) is not reached within the budget."],
    )


def improvement_table(results: Results, reps: int) -> Table:
    """Probability that the reference method's final success beats each other method's."""
    ref = results.reference
    x = results.final(ref, results.headline)
    rows = []
    for m in results.methods:
        if m == ref:
            continue
        y = results.final(m, results.headline)
        pairs = [(a, b) for a, b in zip(x, y) if len(a) and len(b)]
        if pairs:
            e = improvement_estimate([a for a, _ in pairs], [b for _, b in pairs], reps)
            rows.append([m, fmt_estimate(e), str(len(pairs))])
    return Table(
        "improvement",
        f"Probability of improvement of {ref} over each method, final held-out success "
        f"({results.name})",
        ["over", f"P({ref} > method)", "tasks"],
        rows,
        [
            "P(X > Y) + P(X = Y)/2 for a run of each on the same task, averaged over tasks "
            "(rliable); 95% stratified-bootstrap interval.",
            *_notes(results)[1:],
        ],
    )


#: Teacher shares are shown to 4 decimals: a few short demonstrations among long failing
#: episodes are a small share of the env steps.
SHARE_DIGITS = 4


def mechanism_table(results: Results, reps: int) -> Table:
    """What HAPO changes, per method over all runs: how many groups had all-zero advantages,
    how much of the budget the teacher took (whole run and last quarter), the last injection
    rate."""
    quarter = 0.75 * results.budget
    stats: list[tuple[str, Callable[[pd.DataFrame], float], bool, int]] = [
        ("zero-advantage groups", zero_advantage, False, 2),
        ("teacher share, whole run", lambda c: teacher_share(c, 0), True, SHARE_DIGITS),
        ("teacher share, last quarter", lambda c: teacher_share(c, quarter), True, SHARE_DIGITS),
        ("last injection rate", last_injection, True, 2),
    ]
    rows = []
    for m in results.methods:
        teacher = METHODS[results.experiment["methods"][m]["algo"]].uses_teacher
        cells = []
        for _, stat, needs_teacher, digits in stats:
            present = [v for v in results.per_run(m, stat) if len(v)]
            usable = present and (teacher or not needs_teacher)
            cells.append(fmt_estimate(iqm_estimate(present, reps), digits) if usable else "-")
        rows.append([m, *cells, _n_runs(results.final(m, SUCCESS))])
    return Table(
        "mechanism",
        f"Advantage collapse and teacher use, all tasks ({results.name})",
        ["method", *[name for name, *_ in stats], "runs"],
        rows,
        [
            *_notes(results),
            "zero-advantage groups: share of the groups whose advantages were all zero (no "
            "policy gradient), averaged over a run's evaluation intervals; teacher share: "
            "teacher env steps over all env steps, for the last quarter from the last "
            "evaluation at or before 3/4 of the budget; last injection rate: of the last "
            "interval that had an update; '-': the method has no groups or no teacher.",
        ],
    )


def against_teacher(
    results: Results, method: str, task: int, column: str, reps: int
) -> tuple[float, Estimate, str] | None:
    """The teacher's value of ``column`` (a success column or ``eval_return_mean``) for
    ``method`` on task number ``task``, the method's final IQM, and whether that lies above,
    at or below it; None without a teacher or finished runs."""
    t, given = results.teachers, dict(results.experiment["methods"][method])
    if not len(t) or not METHODS[given.pop("algo")].teaches(given):
        return None
    teacher = t[(t["method"] == method) & (t["env_id"] == results.tasks[task])]
    scores = results.final(method, column)[task]
    if not len(teacher) or not len(scores):
        return None
    level = float(teacher["return_mean" if column == RETURN else "success_rate"].iloc[0])
    e = iqm_estimate([scores], reps)
    return level, e, "above" if e.low > level else "below" if e.high < level else "at"


def teacher_table(results: Results, reps: int) -> Table:
    """Each method with a teacher against that teacher (its quality settings included) on the
    same held-out start states: final success and return, above, at or below it."""
    rows = []
    for m in results.methods:
        for i, task in enumerate(results.tasks):
            found = [against_teacher(results, m, i, c, reps) for c in (results.headline, RETURN)]
            if all(f is None for f in found):
                continue
            cells = [
                c
                for f in found
                for c in ((f"{f[0]:.2f}", fmt_estimate(f[1]), f[2]) if f else ("-", "-", "-"))
            ]
            rows.append([m, short_task(task), *cells])
    return Table(
        "teacher_gap",
        f"Methods against their own teacher on the held-out start states ({results.name})",
        ["method", "task", "teacher success", "success", "vs teacher", "teacher return",
         "return", "vs teacher"],
        rows,
        [
            *_notes(results),
            "teacher: the method's teacher, with its quality settings, run once from each "
            "held-out start state the method is evaluated on (teachers.csv; a start state "
            "outside its coverage counts as a failure with return 0). above / below: the "
            "method's interval lies wholly above / below the teacher's value; at: it holds it.",
        ],
    )  # fmt: skip


def ablation_table(results: Results, reps: int) -> Table:
    """One row per method (setting): final success and its difference to the reference."""
    ref = results.reference
    ref_all = results.final(ref, results.headline)
    settings = results.experiment["methods"]
    rows = []
    for m in results.methods:
        pairs = [(a, b) for a, b in zip(results.final(m, results.headline), ref_all)
                 if len(a) and len(b)]  # fmt: skip
        scores, ref_scores = [a for a, _ in pairs], [b for _, b in pairs]
        changed = ", ".join(
            f"{k}={v}" for k, v in settings[m].items()
            if k != "algo" and settings[ref].get(k) != v
        ) or ("-" if m == ref else "")  # fmt: skip
        if m == ref:
            diff = "(reference)"
        else:
            diff = fmt_estimate(difference_estimate(scores, ref_scores, reps)) if pairs else "-"
        own = [s for s in results.final(m, results.headline) if len(s)]
        label = f"**{m}**" if m == ref else m
        rows.append(
            [label, settings[m]["algo"], changed, fmt_estimate(iqm_estimate(own, reps)), diff]
        )
    return Table(
        "ablation",
        f"Ablation against {ref}: final held-out success ({results.name})",
        ["setting", "algo", "differs from the reference in", "success", f"difference to {ref}"],
        rows,
        [
            *_notes(results),
            "The difference pools only the tasks where both the setting and the reference "
            "have finished runs ('-': none).",
        ],
    )


def consistency_table(results: Results, reps: int) -> Table:
    """Per gated method, the injection rate (share of groups given a teacher episode) at
    training success 0.5, 0.8, 0.9 and 0.95, beside the v1 rule's analytic value, and the final
    held-out success: does teacher use vanish as the policy succeeds?"""
    v1 = group_mean_gated(results.experiment["methods"])
    rows = []
    for m in results.methods:
        if not METHODS[results.experiment["methods"][m]["algo"]].uses_teacher:
            continue
        cells = []
        for _, low, high in SUCCESS_BANDS:
            present = results.injection_at(m, low, high)
            n = sum(map(len, present))
            cells.append(f"{fmt_estimate(mean_estimate(present, reps))} ({n})" if n else "-")
        finals = [fmt_estimate(iqm_estimate(results.final(m, c), reps)) for c in (SUCCESS, GREEDY)]
        rows.append([m, *cells, *finals, _n_runs(results.final(m, SUCCESS))])
    for n, tau in sorted({(c.group_size, c.tau) for c in v1.values() if not c.adaptive_tau}):
        analytic = [f"{float(group_mean_rate(level, n, tau)):.3f}" for level, *_ in SUCCESS_BANDS]
        rows.append([f"v1 rule, analytic (N = {n}, tau = {tau})", *analytic, "-", "-", "-"])
    levels = [f"injection at training success {level}" for level, *_ in SUCCESS_BANDS]
    bands = ", ".join(f"{lo}-{hi}" for _, lo, hi in SUCCESS_BANDS)
    return Table(
        "consistency",
        f"Teacher use against training success, all tasks ({results.name})",
        ["method", *levels, "final success, sampled", "final success, greedy", "runs"],
        rows,
        [
            *_notes(results),
            "injection: share of a run's groups given a teacher episode, averaged over its "
            f"evaluation intervals whose training success fell in {bands}; mean over the runs "
            "with such intervals (their number in brackets) with a 95% bootstrap interval. The "
            "analytic row is P((1 + S) / (N + 2) < tau) for S ~ Binomial(N, p), the v1 rule's "
            "rate for a policy succeeding with p; replayed teacher episodes are not counted.",
        ],
    )


def all_tables(results: Results, reps: int) -> list[Table]:
    """Every table of the report."""
    return [
        final_table(results, "eval_success_rate", "success rate, sampled actions", reps),
        *(
            [final_table(results, GREEDY, "success rate, greedy actions", reps)]
            if GREEDY in results.curves and results.curves[GREEDY].notna().all()
            else []
        ),
        final_table(results, "eval_return_mean", "return, sampled actions", reps),
        *[efficiency_table(results, t, reps) for t in THRESHOLDS],
        improvement_table(results, reps),
        mechanism_table(results, reps),
        teacher_table(results, reps),
        ablation_table(results, reps),
        *(
            [consistency_table(results, reps)]
            if group_mean_gated(results.experiment["methods"])
            else []
        ),
    ]
