"""The committed tables, RESULTS.md and README's headline block are what
``python -m hapo_rl.report --all`` makes from the committed results: regenerating each
experiment's tables from ``results/NAME`` gives ``paper_figures/NAME``, the claims give
RESULTS.md and the headline experiments give README's block."""

import json
from pathlib import Path

import pytest

from hapo_rl.experiment import load_experiment
from hapo_rl.report.claims import EARLY, README_MARKERS, headline_md, with_headline
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


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_committed_runs_are_what_their_experiment_file_makes(name):
    """Each experiment file makes the runs committed under its name (so that it resumes or
    reproduces them), except the early-learning profile's, made before hapo's tuning, whose
    file names the commit that makes them."""
    path = ROOT / "experiments" / f"{name}.toml"
    out = ROOT / "results" / name
    made = [s for s in load_experiment(path).specs if s.run_dir(out).is_dir()]
    assert made
    if name in EARLY:
        configs = [json.loads((s.run_dir(out) / "config.json").read_text()) for s in made]
        text = path.read_text()
        assert "git checkout" in text
        assert all(c["git_commit"][:7] in text for c in configs)
    else:
        assert [f"{s.run_dir(out)}: {s.mismatch(out)}" for s in made if s.mismatch(out)] == []


def test_regenerated_claims_equal_results_md():
    runs = {name: load(ROOT / "results" / name) for name in EXPERIMENTS}
    assert results_md(runs) == (ROOT / "RESULTS.md").read_text()


def test_regenerated_headline_equals_the_readme_block():
    runs = {name: load(ROOT / "results" / name) for name in EXPERIMENTS}
    readme = (ROOT / "README.md").read_text()
    assert README_MARKERS[0] in readme
    assert with_headline(readme, headline_md(runs)) == readme
