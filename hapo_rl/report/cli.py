"""Tables and figures from an experiment's saved results, or every experiment's with --all.

``python -m hapo_rl.report results/NAME``, or ``--all`` for every experiment under
``results/``, ``RESULTS.md`` and README's headline block. The top of the report: it imports
every other module of it.

Reads ``results/NAME`` (written by ``python -m hapo_rl.experiment``), never trains, and writes
into ``paper_figures/NAME/`` (or ``--out``): Markdown and LaTeX (booktabs) tables, PDF and PNG
figures, each with a sidecar ``<file>.json`` naming the experiment and the runs it used (method,
task, seed, git commit), and ``README.md`` indexing them. Only finished runs are used; the others
are listed in every table's footnote and in the README, never averaged in. Bad input (a folder
that is not an experiment's results, a damaged table) is one line on stderr and exit status 2,
with nothing written.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hapo_rl
from hapo_rl.common.cli import OneLineParser, UsageError
from hapo_rl.common.io import write_json
from hapo_rl.report import claims, figures
from hapo_rl.report.results import REPS, NothingFinished, Results, experiment_folders, load
from hapo_rl.report.tables import all_tables


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


ALL_COMMAND = "python -m hapo_rl.report --all"


def results_md(runs: dict[str, Results], command: str = ALL_COMMAND) -> str:
    """The text of RESULTS.md: the paper's claims tested on the experiments in ``runs``."""
    return claims.results_md(runs, command)


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
        loaded = []
        for folder in folders:
            try:
                loaded.append(load(folder))
            except NothingFinished:
                if not args.all:
                    raise
                print(f"skipped {folder}: no run has finished yet")
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
        runs = {r.name: r for r in loaded}
        Path("RESULTS.md").write_text(results_md(runs, command))
        print("claims -> RESULTS.md")
        readme = Path("README.md")
        text = readme.read_text() if readme.is_file() else ""
        if all(marker in text for marker in claims.README_MARKERS):
            readme.write_text(claims.with_headline(text, claims.headline_md(runs)))
            print("headline table -> README.md")
    return 0
