"""The committed tables, RESULTS.md and README's headline block are what
``python -m hapo_rl.report --all`` makes from the committed results: regenerating each
experiment's tables from ``results/NAME`` gives ``paper_figures/NAME``, the claims give
RESULTS.md and the headline experiments give README's block."""

from pathlib import Path

import pytest

from hapo_rl.report.claims import README_MARKERS, headline_md, with_headline
from hapo_rl.report.cli import results_md
from hapo_rl.report.results import REPS, experiment_folders, load
from hapo_rl.report.tables import all_tables

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = [p.name for p in experiment_folders(ROOT / "results")]


def test_the_committed_experiments_are_checked():
    assert "smoke" in EXPERIMENTS
    assert all((ROOT / "paper_figures" / name).is_dir() for name in EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_regenerated_tables_equal_the_committed_ones(name):
    committed = ROOT / "paper_figures" / name
    tables = all_tables(load(ROOT / "results" / name), REPS)
    expected = {p.name for p in committed.iterdir() if p.suffix in (".md", ".tex")}
    assert {f"{t.name}{s}" for t in tables for s in (".md", ".tex")} == expected - {"README.md"}
    for table in tables:
        assert table.markdown() == (committed / f"{table.name}.md").read_text(), table.name
        assert table.latex() == (committed / f"{table.name}.tex").read_text(), table.name


def test_regenerated_claims_equal_results_md():
    runs = {name: load(ROOT / "results" / name) for name in EXPERIMENTS}
    assert results_md(runs) == (ROOT / "RESULTS.md").read_text()


def test_regenerated_headline_equals_the_readme_block():
    runs = {name: load(ROOT / "results" / name) for name in EXPERIMENTS}
    readme = (ROOT / "README.md").read_text()
    assert README_MARKERS[0] in readme
    assert with_headline(readme, headline_md(runs)) == readme
