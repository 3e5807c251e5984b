"""Tables and figures from an experiment's saved results: ``python -m hapo_rl.report results/NAME``,
or ``--all`` for every experiment under ``results/`` and ``RESULTS.md`` (``hapo_rl.claims``).

Reads ``results/NAME`` (written by ``python -m hapo_rl.experiment``), never trains, and writes
into ``paper_figures/NAME/`` (or ``--out``): Markdown and LaTeX (booktabs) tables, PDF and PNG
figures, each with a sidecar ``<file>.json`` naming the experiment and the runs it used (method,
task, seed, git commit), and ``README.md`` indexing them. Only finished runs are used; the others
are listed in every table's footnote and in the README, never averaged in. Bad input (a folder
that is not an experiment's results) is one line on stderr and exit status 2, with nothing
written.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import hapo_rl
from hapo_rl import figures
from hapo_rl.cli import OneLineParser, UsageError
from hapo_rl.gate import group_mean_rate
from hapo_rl.io import write_json
from hapo_rl.methods import METHODS, group_mean_gated
from hapo_rl.stats import (
    SUCCESS_BANDS,
    Estimate,
    difference_estimate,
    improvement_estimate,
    injection_at_success,
    iqm_estimate,
    mean_estimate,
    on_grid,
    steps_to,
)

THRESHOLDS = (0.5, 0.9)
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

    def steps_to(self, method: str, threshold: float) -> list[np.ndarray]:
        """Per task, each finished run's env steps to reach ``threshold`` success (inf: never),
        at the steps the evaluations were made."""
        raw = self.curves.drop_duplicates(["method", "env_id", "seed", "eval_step"])
        mine = raw[raw["method"] == method].assign(step=lambda c: c["eval_step"])
        return [
            np.array(
                [steps_to(c.sort_values("step"), threshold) for _, c in g.groupby("seed")], float
            )
            for t in self.tasks
            for g in [mine[mine["env_id"] == t]]
        ]

    def reached(self, method: str, threshold: float) -> str:
        """How many of the method's finished runs reach ``threshold`` success in the budget,
        as "k/n"."""
        steps = self.steps_to(method, threshold)
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


def load(folder: Path) -> Results:
    """Read an experiment's results folder; ``UsageError`` if it is not one."""
    needed = ("experiment.json", "runs.csv", "curves.parquet")
    missing = [n for n in needed if not (folder / n).is_file()]
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
    commits = []
    for r in finished.itertuples():
        run_dir = folder / r.method / r.env_id.split(":")[-1] / f"s{r.seed}"
        config = run_dir / "config.json"
        commit = json.loads(config.read_text()).get("git_commit") if config.is_file() else None
        commits.append({"run_dir": str(run_dir.relative_to(folder)), "git_commit": commit})
    run_table = (
        pd.concat([finished[keys].reset_index(drop=True), pd.DataFrame(commits)], axis=1)
        if len(finished)
        else pd.DataFrame(columns=[*keys, "run_dir", "git_commit"])
    )
    if not len(run_table):
        raise UsageError(f"{folder}: no run has finished yet; nothing to report")
    teachers = folder / "teachers.csv"
    return Results(
        folder.name, folder, experiment, done, gate, run_table, budget, left_out,
        pd.read_csv(teachers) if teachers.is_file() else pd.DataFrame(),
    )  # fmt: skip


# -- tables --------------------------------------------------------------------------------


def fmt_estimate(e: Estimate, digits: int = 2) -> str:
    """``value [low, high]``."""
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _fmt_steps(e: Estimate, budget: int) -> str:
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
        cells = [_fmt_steps(iqm_estimate([s], reps), budget) if len(s) else "-" for s in steps]
        present = [s for s in steps if len(s)]
        every = _fmt_steps(iqm_estimate(present, reps), budget)
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
    x = results.final(ref, "eval_success_rate")
    rows = []
    for m in results.methods:
        if m == ref:
            continue
        y = results.final(m, "eval_success_rate")
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


def _last_injection(curve: pd.DataFrame) -> float:
    known = curve["injection_rate"].dropna()
    return float(known.iloc[-1]) if len(known) else float("nan")


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
        ("last injection rate", _last_injection, True, 2),
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
    """The teacher's value of ``column`` (``eval_success_rate`` or ``eval_return_mean``) for
    ``method`` on task number ``task``, the method's final IQM, and whether that lies above,
    at or below it; None without a teacher or finished runs."""
    t, given = results.teachers, dict(results.experiment["methods"][method])
    if not len(t) or not METHODS[given.pop("algo")].teaches(given):
        return None
    teacher = t[(t["method"] == method) & (t["env_id"] == results.tasks[task])]
    scores = results.final(method, column)[task]
    if not len(teacher) or not len(scores):
        return None
    level = float(teacher[column.removeprefix("eval_")].iloc[0])
    e = iqm_estimate([scores], reps)
    return level, e, "above" if e.low > level else "below" if e.high < level else "at"


def teacher_table(results: Results, reps: int) -> Table:
    """Each method with a teacher against that teacher (its quality settings included) on the
    same held-out start states: final success and return, above, at or below it."""
    rows = []
    for m in results.methods:
        for i, task in enumerate(results.tasks):
            found = [against_teacher(results, m, i, c, reps) for c in (SUCCESS, RETURN)]
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
    ref_all = results.final(ref, "eval_success_rate")
    settings = results.experiment["methods"]
    rows = []
    for m in results.methods:
        pairs = [(a, b) for a, b in zip(results.final(m, "eval_success_rate"), ref_all)
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
        own = [s for s in results.final(m, "eval_success_rate") if len(s)]
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


# -- output --------------------------------------------------------------------------------


def _sidecar(results: Results, path: Path, command: str, extra: dict | None = None) -> None:
    write_json(
        path.with_name(path.name + ".json"),
        {
            "experiment": results.name,
            "results": str(results.folder),
            "command": command,
            "package_version": hapo_rl.__version__,
            "seeds": sorted(int(s) for s in results.runs["seed"].unique()),
            "commits": sorted({str(c) for c in results.runs["git_commit"]}),
            "runs": results.runs.to_dict("records"),
            "left_out": results.left_out,
            **(extra or {}),
        },
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


def write_report(results: Results, out: Path, style: str, reps: int, command: str) -> list[Path]:
    """Every table and figure into ``out``; returns the files written (sidecars excluded)."""
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tables = all_tables(results, reps)
    written = []
    for table in tables:
        for suffix, text in ((".md", table.markdown()), (".tex", table.latex())):
            path = tmp / f"{table.name}{suffix}"
            path.write_text(text)
            _sidecar(results, path, command)
            written.append(path)
    for path in figures.draw_all(results, tmp, style, min(reps, 2_000)):
        _sidecar(results, path, command, {"style": style})
        written.append(path)
    index = [f"# Report: {results.name}", "", f"From `{results.folder}` by `{command}`.", ""]
    index += [f"- [{p.name}]({p.name})" for p in written]
    if results.left_out:
        index += ["", "## Left out (not finished)", "", *[f"- {r}" for r in results.left_out]]
    index += ["", *[t.markdown() for t in tables]]
    (tmp / "README.md").write_text("\n".join(index) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return [out / p.name for p in written]


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m hapo_rl.report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "results", type=Path, nargs="?", help="an experiment's results folder (or --all)"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="every experiment in results/ into paper_figures/<name>/, and RESULTS.md",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: paper_figures/<name>)"
    )
    parser.add_argument(
        "--style", choices=("paper", "slides"), default="paper", help="figure sizes and fonts"
    )
    parser.add_argument(
        "--reps", type=int, default=REPS, help="bootstrap replications (default: %(default)s)"
    )
    return parser


def experiment_folders(root: Path = Path("results")) -> list[Path]:
    """The experiments' results folders under ``root``."""
    return sorted(p.parent for p in root.glob("*/experiment.json"))


ALL_COMMAND = "python -m hapo_rl.report --all"


def results_md(runs: dict[str, Results], command: str = ALL_COMMAND) -> str:
    """The text of RESULTS.md: the paper's claims tested on the experiments in ``runs``."""
    from hapo_rl import claims  # claims builds on this module

    tested = {n: runs[n] for n in claims.EXPERIMENTS if n in runs}
    missing = [n for n in claims.EXPERIMENTS if n not in runs]
    return claims.results_md(tested, missing, command)


def main(argv: list[str] | None = None) -> int:
    args_list = argv if argv is not None else sys.argv[1:]
    try:
        args = build_parser().parse_args(argv)
        if args.reps < 100:
            raise UsageError(f"--reps must be at least 100, got {args.reps}")
        if args.all == (args.results is not None):
            raise UsageError("give one results folder, or --all")
        if args.all and args.out:
            raise UsageError("--out goes with one results folder, not --all")
        folders = experiment_folders() if args.all else [args.results]
        if not folders:
            raise UsageError("no experiment's results under results/")
        loaded = [load(f) for f in folders]
    except UsageError as exc:
        print(f"hapo_rl.report: error: {exc}", file=sys.stderr)
        return 2
    command = " ".join(["python -m hapo_rl.report", *args_list])
    for results in loaded:
        out = args.out or Path("paper_figures") / results.name
        written = write_report(results, out, args.style, args.reps, command)
        print(f"{len(written)} files from {len(results.runs)} runs -> {out}")
        if results.left_out:
            print(f"left out (not finished): {len(results.left_out)} runs; see {out / 'README.md'}")
    if args.all:
        from hapo_rl.claims import README_MARKERS, headline_md, with_headline

        runs = {r.name: r for r in loaded}
        Path("RESULTS.md").write_text(results_md(runs, command))
        print("claims -> RESULTS.md")
        readme = Path("README.md")
        text = readme.read_text() if readme.is_file() else ""
        if all(marker in text for marker in README_MARKERS):
            readme.write_text(with_headline(text, headline_md(runs)))
            print("headline table -> README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
