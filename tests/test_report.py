"""``python -m hapo_rl.report``: statistics against hand-computed values, every file from a
fixture results folder, the footnote for a run that did not finish, and bad folders."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from rliable import library, metrics
from scipy.stats import trim_mean

from hapo_rl.report import main
from hapo_rl.report.claims import README_MARKERS
from hapo_rl.report.figures import colours
from hapo_rl.report.stats import (
    curve_band,
    difference_estimate,
    improvement_estimate,
    iqm,
    iqm_estimate,
    on_grid,
    seeded,
    steps_to,
)

TASKS = ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-KeyCorridorS3R1-v0"]
SEEDS = [0, 1, 2]
EVERY = 1000


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(8)) == 3.5  # mean of 2, 3, 4, 5
    assert iqm([1.0, 100.0, 2.0, 3.0]) == 2.5  # the outlier and the minimum are cut
    rng = np.random.default_rng(0)
    for n in range(1, 12):
        x = rng.random(n)
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25))
    m = rng.random((9, 3))
    assert np.allclose(iqm(m, axis=0), trim_mean(m, 0.25, axis=0))


def improvement_probability(x, y):
    """rliable's probability of improvement, averaged over tasks."""
    return float(
        np.mean([metrics.probability_of_improvement(a[:, None], b[:, None]) for a, b in zip(x, y)])
    )


def test_probability_of_improvement_by_hand():
    # pairs (x, y): 1>0, 1<2, 2>0, 2=2 (half), 3>0, 3>2: 4.5 of 6
    assert improvement_probability([np.array([1.0, 2, 3])], [np.array([0.0, 2])]) == 0.75
    assert improvement_estimate([np.array([1.0, 2, 3])], [np.array([0.0, 2])]).value == 0.75
    # averaged over tasks: 0.75 and 0.0
    two = improvement_probability(
        [np.array([1.0, 2, 3]), np.array([0.0])], [np.array([0.0, 2]), np.array([1.0])]
    )
    assert two == pytest.approx(0.375)


def test_intervals_hold_the_estimate_and_collapse_on_constant_data():
    e = iqm_estimate([np.full(5, 0.4), np.full(3, 0.8)], reps=500)
    # pooled: 0.4 x5, 0.8 x3 -> middle half of 8 sorted values = 0.4, 0.4, 0.4, 0.8
    assert (e.value, e.low, e.high) == pytest.approx((0.5, 0.4, 0.6), abs=0.101)
    assert e.value == pytest.approx(0.5)
    d = difference_estimate([np.ones(4)], [np.zeros(4)], reps=500)
    assert (d.value, d.low, d.high) == (1.0, 1.0, 1.0)
    v = iqm_estimate([np.linspace(0, 1, 20)], reps=2000)
    assert v.low < v.value < v.high


def test_intervals_are_reproducible_whatever_the_global_generator():
    x = [np.array([0.6, 0.5, 0.4]), np.array([0.1, 0.9, 0.3, 0.2])]
    first = iqm_estimate(x, reps=300)
    np.random.random(7)  # the bootstrap must not depend on numpy's global generator
    state = np.random.get_state()[1].copy()
    assert iqm_estimate(x, reps=300) == first
    assert (np.random.get_state()[1] == state).all()  # and it is left as it was


def test_estimates_are_the_same_doubles_when_the_values_move_by_an_ulp():
    # a CPU with another vector width sums in another order: the last bit moves, and 0.895
    # (the IQM below) would print as 0.89 on one machine and 0.90 on another
    x = np.array([0.88, 0.89, 0.90, 0.91, 0.85, 0.95])
    up, down = np.nextafter(x, 1), np.nextafter(x, 0)
    assert iqm_estimate([up], reps=300) == iqm_estimate([down], reps=300)
    y = np.array([0.875, 0.905, 0.86, 0.92])  # no ties with x
    assert improvement_estimate([up], [y], reps=300) == improvement_estimate([down], [y], reps=300)
    assert np.array_equal(np.stack(curve_band([up, up[::-1]], reps=300)[1]),
                          np.stack(curve_band([down, down[::-1]], reps=300)[1]))  # fmt: skip


REPS = 4_000  # endpoints within 0.02 (0.03 for the discrete improvement) here; without the
# strata they would be ~0.5 apart


def rliable_interval(arrays, func, reps=REPS):
    with seeded(1):  # rliable draws from the global generator
        point, interval = library.get_interval_estimates(
            {"x": arrays}, lambda *xs: np.array([func(*xs)]), reps=reps,
            random_state=np.random.RandomState(1),
        )  # fmt: skip
    return point["x"][0], interval["x"][0, 0], interval["x"][1, 0]


@pytest.mark.filterwarnings("ignore:random_state is deprecated")
def test_the_vectorised_bootstrap_gives_rliables_intervals():
    rng = np.random.default_rng(0)
    # tasks far apart, so that resampling runs across tasks would widen the intervals
    x = [0.8 + 0.2 * rng.random(5), 0.2 * rng.random(3)]
    y = [0.6 + 0.4 * rng.random(5), 0.3 * rng.random(4)]
    pooled = lambda *xs: iqm(np.concatenate(xs))  # noqa: E731
    ours = iqm_estimate(x, reps=REPS)
    assert (ours.value, ours.low, ours.high) == pytest.approx(rliable_interval(x, pooled), abs=0.02)
    diff = difference_estimate(x, y, reps=REPS)
    theirs = rliable_interval([*x, *y], lambda *xs: pooled(*xs[:2]) - pooled(*xs[2:]))
    assert (diff.value, diff.low, diff.high) == pytest.approx(theirs, abs=0.02)
    better = improvement_estimate(x, y, reps=REPS)
    theirs = rliable_interval([*x, *y], lambda *xs: improvement_probability(xs[:2], xs[2:]))
    assert better.value == improvement_probability(x, y) == theirs[0]
    assert (better.low, better.high) == pytest.approx(theirs[1:], abs=0.03)
    curves = [rng.random(6) for _ in range(12)]
    point, band = curve_band(curves, reps=REPS)
    with seeded(1):
        theirs, their_band = library.get_interval_estimates(
            {"x": np.stack(curves)[:, None, :]}, lambda s: iqm(s[:, 0, :], axis=0),
            reps=REPS, random_state=np.random.RandomState(1),
        )  # fmt: skip
    assert np.allclose(point, theirs["x"]) and np.allclose(band, their_band["x"], atol=0.03)


def test_every_method_of_an_ablation_gets_its_own_colour_and_style():
    methods = ["hapo", "always-inject", *(f"setting-{i}" for i in range(10))]
    styles = colours(methods)
    assert len(set(styles.values())) == len(methods)
    assert styles["hapo"] == ("#D55E00", "-")  # named methods keep their colour
    # no other method takes a colour like hapo's (seaborn's fourth colour is almost the same)
    assert all(c.lower() != "#d55e00" for m, (c, _) in styles.items() if m != "hapo")


def test_steps_to_a_threshold_and_the_evaluation_grid():
    curve = pd.DataFrame({"step": [0, 10, 20, 30], "eval_success_rate": [0, 0.4, 0.6, 0.95]})
    assert steps_to(curve, 0.5) == 20 and steps_to(curve, 0.9) == 30
    assert steps_to(curve, 0.99) == float("inf")
    late = pd.DataFrame({"step": [0, 25_340, 82_000, 100_352], "x": [0, 1, 2, 3]})
    grid = on_grid(late, 25_000, 100_000)
    assert grid["step"].tolist() == [0, 25_000, 50_000, 75_000, 100_000]
    # the evaluation made for each point (the first at or after it); the budget gets the last
    assert grid["x"].tolist() == [0, 1, 2, 2, 3]
    assert grid["eval_step"].tolist() == [0, 25_340, 82_000, 82_000, 100_352]


def final_success(method: str, task: int, seed: int) -> float:
    """The fixture's final success: hapo 0.9/0.8/0.7 on task 0, 0.6.. on task 1; grpo 0.3 less."""
    base = (0.9 if task == 0 else 0.6) - 0.1 * seed
    return round(base - (0.3 if method == "grpo" else 0.0), 3)


def make_results(folder, unfinished=(), headline=None, methods=None):
    """A results folder as python -m hapo_rl.experiment writes it, with synthetic numbers; the
    runs' config.json name ``headline`` as their headline evaluation (runs before it did not).
    ``methods`` gives the two methods' settings (names hapo and grpo, scored as such)."""
    methods = methods or {"hapo": {"algo": "hapo"}, "grpo": {"algo": "grpo"}}
    rows, runs, gates = [], [], []
    for method in methods:
        for t, task in enumerate(TASKS):
            for seed in SEEDS:
                done = (method, task, seed) not in unfinished
                final = final_success(method, t, seed)
                for k, step in enumerate([0, 1010, 2030, 3001]):
                    rows.append({
                        "experiment": folder.name, "method": method, "algo": method,
                        "env_id": task, "seed": seed, "finished": done, "step": step,
                        "teacher_steps": [0, 0, 300, 1200][k] if method == "hapo" else 0,
                        "injection_rate": 0.5 / (k + 1) if method == "hapo" else 0.0,
                        "zero_adv_group_frac": np.nan if k == 0 else float(method == "grpo"),
                        "gated_states": 10 - k if method == "hapo" else np.nan,
                        "eval_success_rate": final * k / 3, "eval_return_mean": final * k / 4,
                        "eval_greedy_success_rate": final * k / 6,
                        "wall_time_s": 50.0 * k,
                    })  # fmt: skip
                    if method == "hapo" and k:
                        gates.append({
                            "method": method, "env_id": task, "seed": seed, "step": step,
                            "start_state": 7, "alpha": 1.0 + k, "beta": 2.0, "inject_prob": 0.5,
                        })  # fmt: skip
                runs.append({
                    "method": method, "algo": method, "env_id": task, "seed": seed,
                    "total_steps": 3000, "eval_every": EVERY, "eval_episodes": 10,
                    "status": "finished" if done else "partial", "error": "",
                })  # fmt: skip
                run_dir = folder / method / task / f"s{seed}"
                run_dir.mkdir(parents=True)
                config = {"git_commit": "abc1234"}
                if headline:
                    config["headline_eval"] = headline
                (run_dir / "config.json").write_text(json.dumps(config))
    folder.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "curves.parquet")
    pd.DataFrame(gates).to_parquet(folder / "gate.parquet")
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(
        [{"method": "hapo", "env_id": t, "success_rate": 0.6, "return_mean": 0.5} for t in TASKS]
    ).to_csv(folder / "teachers.csv", index=False)
    experiment = {"name": folder.name, "reference": "hapo", "tasks": TASKS, "seeds": SEEDS,
                  "methods": methods}  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(experiment))
    return folder


EXPECTED = [
    *[
        f"{t}.{s}"
        for t in (
            "final_success",
            "final_greedy_success",
            "final_return",
            "steps_to_50",
            "steps_to_90",
            "improvement",
            "mechanism",
            "teacher_gap",
            "ablation",
        )
        for s in ("md", "tex")
    ],  # fmt: skip
    *[
        f"{f}_{t}.{s}"
        for f in ("curves", "hapo_evidence", "gate_posteriors")
        for t in ("DoorKey-5x5", "KeyCorridorS3R1")
        for s in ("pdf", "png")
    ],  # fmt: skip
    *[f"{f}.{s}" for f in ("performance_profile", "aggregate_intervals") for s in ("pdf", "png")],
]


def test_the_report_writes_every_table_and_figure_with_sidecars(tmp_path, capsys):
    results, out = make_results(tmp_path / "exp"), tmp_path / "figs"
    assert main([str(results), "--out", str(out), "--reps", "200"]) == 0
    assert {p.name for p in out.iterdir()} == {
        "README.md",
        *EXPECTED,
        *[f"{n}.json" for n in EXPECTED],
    }
    side = json.loads((out / "curves_DoorKey-5x5.png.json").read_text())
    assert side["experiment"] == "exp" and side["seeds"] == SEEDS
    assert side["commits"] == ["abc1234"] and len(side["runs"]) == 12 and not side["left_out"]
    table = (out / "final_success.md").read_text()
    # hapo on DoorKey: finals 0.9, 0.8, 0.7 -> IQM of three values cuts none: 0.80
    assert "| hapo | 0.80 [" in table and "| grpo | 0.50 [" in table
    greedy = (out / "final_greedy_success.md").read_text()
    assert "greedy actions" in greedy and "| hapo | 0.40 [" in greedy
    # hapo beats grpo on every seed pairing that matters: P = (9 + ...)/9 per task
    improvement = (out / "improvement.md").read_text()
    expected = improvement_probability(
        [np.array([final_success("hapo", t, s) for s in SEEDS]) for t in range(2)],
        [np.array([final_success("grpo", t, s) for s in SEEDS]) for t in range(2)],
    )
    assert f"| grpo | {expected:.2f} [" in improvement
    assert "(reference)" in (out / "ablation.md").read_text()
    # hapo: no zero-advantage group; teacher 1,200 of 3,001 steps, 900 of the 971 after the
    # evaluation at 2,030 (the last at or before 3/4 of the budget); injection 0.5/4 at the end
    mechanism = (out / "mechanism.md").read_text()
    hapo_row = (
        "| hapo | 0.00 [0.00, 0.00] | 0.3999 [0.3999, 0.3999] | 0.9269 [0.9269, 0.9269] | 0.12 ["
    )
    assert hapo_row in mechanism
    assert "| grpo | 1.00 [1.00, 1.00] | - | - | - |" in mechanism
    # hapo against its teacher (0.6 success, 0.5 return): above on DoorKey, holds it on the other
    gap = (out / "teacher_gap.md").read_text()
    assert "| hapo | DoorKey-5x5 | 0.60 | 0.80 [0.70, 0.90] | above | 0.50 | 0.60 [" in gap
    assert "| hapo | KeyCorridorS3R1 | 0.60 | 0.50 [0.40, 0.60] | at |" in gap
    assert "| grpo |" not in gap
    assert r"\toprule" in (out / "final_success.tex").read_text()
    assert "12 runs" in capsys.readouterr().out
    again = tmp_path / "again"
    assert main([str(results), "--out", str(again), "--reps", "200"]) == 0
    for name in EXPECTED:
        if name.endswith((".md", ".tex")):
            assert (again / name).read_text() == (out / name).read_text(), name


def test_runs_whose_headline_is_greedy_are_judged_on_greedy_success(tmp_path):
    out = tmp_path / "figs"
    assert main([str(make_results(tmp_path / "exp", headline="greedy")), "--out", str(out),
                 "--reps", "200"]) == 0  # fmt: skip
    # greedy finals are half the sampled ones: hapo 0.45/0.40/0.35 on DoorKey, against 0.6
    gap = (out / "teacher_gap.md").read_text()
    assert "| hapo | DoorKey-5x5 | 0.60 | 0.40 [0.35, 0.45] | below |" in gap
    assert "greedy (mean) actions" in gap
    assert "| **hapo** | hapo | - | 0.33 [" in (out / "ablation.md").read_text()  # both tasks
    assert "| hapo | 0.80 [" in (out / "final_success.md").read_text()  # still the sampled table
    sampled = tmp_path / "sampled"
    assert main([str(make_results(tmp_path / "old")), "--out", str(sampled), "--reps", "200"]) == 0
    assert "| **hapo** | hapo | - | 0.65 [" in (sampled / "ablation.md").read_text()


def test_the_headline_mode_comes_first_and_a_mode_not_recorded_is_left_out(tmp_path):
    from hapo_rl.report.results import GREEDY, SUCCESS, load

    greedy = load(make_results(tmp_path / "greedy", headline="greedy"))
    assert greedy.modes == [("greedy", GREEDY), ("sampled", SUCCESS)]
    folder = make_results(tmp_path / "old")
    curves = pd.read_parquet(folder / "curves.parquet")
    curves.assign(**{GREEDY: np.nan}).to_parquet(folder / "curves.parquet")
    assert load(folder).modes == [("sampled", SUCCESS)]


def test_a_run_that_did_not_finish_is_left_out_and_footnoted(tmp_path, capsys):
    results = make_results(tmp_path / "exp", unfinished=[("grpo", TASKS[1], 2)])
    out = tmp_path / "figs"
    assert main([str(results), "--out", str(out), "--reps", "200"]) == 0
    for name in ("final_success.md", "final_success.tex", "steps_to_90.md"):
        assert "Left out, not finished (1 of 12 runs)" in (out / name).read_text(), name
    assert "grpo on MiniGrid-KeyCorridorS3R1-v0 seed 2: partial" in (out / "README.md").read_text()
    # grpo on KeyCorridorS3R1 keeps seeds 0 and 1 (0.3, 0.2): IQM 0.25
    assert re.search(
        r"\| grpo \| 0\.50 \[[0-9., ]+\] \| 0\.25 \[", (out / "final_success.md").read_text()
    )
    assert len(json.loads((out / "ablation.md.json").read_text())["runs"]) == 11
    assert "left out (not finished): 1 runs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "is not an experiment's results folder"),
        (lambda p: (p.mkdir(), p)[1], "is not an experiment's results folder"),
        (lambda p: (p.mkdir(), (p / "x.txt").write_text("x"), p)[2], "missing experiment.json"),
    ],
)
def test_a_folder_that_is_not_results_is_one_line_and_writes_nothing(tmp_path, capsys, make,
                                                                     message):  # fmt: skip
    folder, out = make(tmp_path / "nope"), tmp_path / "figs"
    assert main([str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_all_reports_every_experiment_and_tests_the_claims(tmp_path, monkeypatch, capsys):
    make_results(tmp_path / "results" / "minigrid_main_doorkey")
    make_results(tmp_path / "results" / "minigrid_main")
    one_seed = [(m, t, s) for m in ("hapo", "grpo") for t in TASKS for s in SEEDS[1:]]
    make_results(tmp_path / "results" / "minigrid_main_keycorridor", unfinished=one_seed)
    grpo_one = [("grpo", t, s) for t in TASKS for s in SEEDS[1:]]
    make_results(tmp_path / "results" / "minigrid_main_multiroom", unfinished=grpo_one)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text(
        "# Title\n\n" + "\nstale\n".join(README_MARKERS) + "\nend\n"
    )
    assert main(["--all", "--reps", "200"]) == 0
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# Title\n\n" + README_MARKERS[0]) and readme.endswith("\nend\n")
    assert "stale" not in readme, readme
    # the headline shows the main experiment in both modes, never the early-learning profile
    # hapo's DoorKey finals 0.9/0.8/0.7 sampled, half that greedy
    header = "| method | DoorKey-5x5 (3k) | KeyCorridorS3R1 (3k) |"
    assert f"{header}{header[len('| method |') :]}\n" in readme, readme  # doorkey, multiroom
    # an experiment with one run of its reference method a task is named as under way, not
    # shown; one whose reference has enough shows the other method's count where it has not
    assert "have finished: minigrid_main_keycorridor (4 runs)." in readme, readme
    assert "| grpo | 0." in readme and " | 1 finished run so far | " in readme, readme
    assert "minigrid_main_multiroom: 8 runs" in readme
    assert "| hapo | 0.80 [" in readme and "] / 0.40 [" in readme, readme
    assert "minigrid_main:" not in readme and "minigrid_main_doorkey: 12 runs" in readme
    assert "curves_DoorKey-5x5.png" in readme
    assert (tmp_path / "paper_figures" / "minigrid_main_doorkey" / "final_success.md").is_file()
    claims = (tmp_path / "RESULTS.md").read_text()
    main_part, early = claims.split("## Early-learning profile")
    # 12 runs of 150 s each: 0.5 CPU hours
    link = "[minigrid_main_doorkey](paper_figures/minigrid_main_doorkey/README.md)"
    assert f"| {link} | 12/12 | 0, 1, 2 | 3,000 | 0.5 | main |" in main_part
    assert "| teacher_study | not run yet |  |  |  | main |" in main_part
    early_link = "[minigrid_main](paper_figures/minigrid_main/README.md)"
    row = f"| {early_link} | 12/12 | 0, 1, 2 | 3,000 | 0.5 | early; see minigrid_main_<task> |"
    assert row in early and early_link not in main_part
    mechanism, improvement, gap = (
        f"[minigrid_main_doorkey/{n}](paper_figures/minigrid_main_doorkey/{n}.md)"
        for n in ("mechanism", "improvement", "teacher_gap")
    )
    # every hapo run has no zero-advantage group, every grpo run only such groups
    assert f"| {mechanism} | 0.00 [0.00, 0.00] | 1.00 [1.00, 1.00] | supported |" in main_part
    assert "[minigrid_main/mechanism]" in early and "[minigrid_main/mechanism]" not in main_part
    # hapo ends 0.3 above grpo on every seed of both tasks
    assert f"| {improvement} | grpo | 1.00 [1.00, 1.00] | 2 | HAPO better |" in main_part
    # the fixture's teacher share rises from 0.40 over the run to 0.93 in the last quarter
    assert (
        f"| {mechanism} | hapo | 0.3999 [0.3999, 0.3999] | 0.9269 [0.9269, 0.9269] | rises |"
        in main_part
    )
    # hapo against its teacher: success above on DoorKey, at on KeyCorridor; return above, below
    assert f"| {gap} | hapo | 2 | 1 / 1 / 0 | 1 / 0 / 1 | above its teacher |" in main_part
    # no fixture run reaches 90% (finals 0.35-0.95 sampled, half that greedy, at the end only)
    steps = main_part.split("## Env steps to 90% held-out success")[1]
    assert "| task (budget) | method | sampled | greedy |" in steps, steps
    never = "never [never, never] (0/3)"
    assert f"| KeyCorridorS3R1 (3k) | grpo | {never} | {never} |" in steps, steps
    assert steps.count("| KeyCorridorS3R1 (3k) | grpo |") == 1, steps  # not the 1-run one
    assert "claims -> RESULTS.md" in capsys.readouterr().out


def test_gate_posteriors_are_drawn_only_for_a_reference_whose_injections_follow_them(tmp_path):
    from hapo_rl.report.figures import gate_posteriors
    from hapo_rl.report.results import load

    gated = load(make_results(tmp_path / "gated"))
    methods = {"hapo": {"algo": "bc-grpo"}, "grpo": {"algo": "grpo"}}
    shut = load(make_results(tmp_path / "shut", methods=methods))
    assert not shut.gate.empty  # bc-grpo keeps posteriors but never reads them
    assert len(gate_posteriors(gated, tmp_path, "paper")) == 4  # two tasks, pdf and png
    assert gate_posteriors(shut, tmp_path, "paper") == []


def test_claims_set_each_teacher_against_what_learns_from_it(tmp_path):
    from hapo_rl.report.claims import per_teacher
    from hapo_rl.report.results import load

    noisy = {"algo": "hapo", "teacher_epsilon": 0.5, "teacher_detour_stops": 1}
    folder = make_results(tmp_path / "study", methods={"hapo": {"algo": "hapo"}, "grpo": noisy})
    teachers = pd.read_csv(folder / "teachers.csv")
    worse = teachers.assign(method="grpo", success_rate=0.65, return_mean=0.05)
    pd.concat([teachers, worse]).to_csv(folder / "teachers.csv", index=False)
    rows = per_teacher({"study": load(folder)})[0].splitlines()
    assert rows[0].startswith("| experiment | teacher | task | teacher success | teacher return |")
    link = "[study/teacher_gap](paper_figures/study/teacher_gap.md)"
    # the perfect teacher (0.60, 0.50) under hapo's DoorKey finals 0.9/0.8/0.7 (returns 3/4 of
    # those); the noisy one (0.65, 0.05) above the same algorithm's 0.6/0.5/0.4 in success and
    # below it in return; the default detour stops name no teacher
    perfect, eps = (
        next(r for r in rows if f"| {n} | DoorKey-5x5 |" in r) for n in ("perfect", "epsilon 0.5")
    )
    assert perfect.startswith(f"| {link} | perfect | DoorKey-5x5 | 0.60 | 0.50 | 0.80 [")
    assert "above |" in perfect and perfect.endswith("| - | - | - | - | surpassed by hapo |")
    assert eps.startswith(f"| {link} | epsilon 0.5 | DoorKey-5x5 | 0.65 | 0.05 | 0.50 [")
    assert "0.50 [0.40, 0.60] below | 0.38 [0.30, 0.45] above | - |" in eps
    assert eps.endswith("| surpassed by hapo |")
    assert len(rows) == 2 + 4


@pytest.mark.parametrize("argv", [["--all", "results/x"], ["--all", "--out", "o"], [], ["--all"]])
def test_all_or_one_folder(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "RESULTS.md").exists()


#: Training success of the consistency fixture's runs at its evaluation points.
LEVELS = [0.0, 0.2, 0.5, 0.8, 0.9, 0.95, 1.0]


def make_consistency_results(folder):
    """A results folder of the Thompson gate and the v1 rule whose injection rates are, at
    every training success p, exactly the rule's analytic rate, and (1 - p)^8 for Thompson."""
    from hapo_rl.core.gate import group_mean_rate

    methods = {
        "thompson": {"algo": "hapo", "group_size": 8},
        "v1": {"algo": "hapo", "group_size": 8, "gate": "group-mean", "tau": 0.8},
    }
    rows, runs = [], []
    for method in methods:
        for task in TASKS:
            for seed in SEEDS:
                for k, p in enumerate(LEVELS):
                    inject = group_mean_rate(p, 8, 0.8) if method == "v1" else (1 - p) ** 8
                    rows.append({
                        "experiment": folder.name, "method": method, "algo": "hapo",
                        "env_id": task, "seed": seed, "finished": True, "step": 500 * k,
                        "teacher_steps": 10 * k, "train_success_rate": np.nan if k == 0 else p,
                        "injection_rate": np.nan if k == 0 else float(inject),
                        "zero_adv_group_frac": 0.0, "gated_states": 1.0,
                        "eval_success_rate": p, "eval_return_mean": p / 2,
                        "eval_greedy_success_rate": p, "wall_time_s": 10.0 * k,
                    })  # fmt: skip
                runs.append({
                    "method": method, "algo": "hapo", "env_id": task, "seed": seed,
                    "total_steps": 3000, "eval_every": 500, "eval_episodes": 10,
                    "status": "finished", "error": "",
                })  # fmt: skip
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "curves.parquet")
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    experiment = {"name": folder.name, "reference": "thompson", "tasks": TASKS, "seeds": SEEDS,
                  "methods": methods}  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(experiment))
    return folder


def test_the_consistency_report_reads_teacher_use_against_success(tmp_path, monkeypatch):
    make_consistency_results(tmp_path / "results" / "consistency")
    monkeypatch.chdir(tmp_path)
    assert main(["--all", "--reps", "200"]) == 0
    out = tmp_path / "paper_figures" / "consistency"
    assert (out / "injection_vs_success.png").is_file()
    table = (out / "consistency.md").read_text()
    # each level's band holds exactly one evaluation of every run: the analytic value
    assert "| v1 | 0.96 [0.96, 0.96] (6) | 0.50 [0.50, 0.50] (6) | 0.19 [0.19, 0.19] (6) |" in table
    assert "| v1 rule, analytic (N = 8, tau = 0.8) | 0.965 | 0.497 | 0.187 | 0.057 |" in table
    claims = (tmp_path / "RESULTS.md").read_text()
    link = "[consistency/consistency](paper_figures/consistency/consistency.md)"
    assert (
        f"| {link} | thompson | 0.000 [0.000, 0.000] | 0.000 [0.000, 0.000] | goes to zero |"
        in claims
    )
    assert (
        f"| {link} | v1 | 0.187 [0.187, 0.187] | 0.057 [0.057, 0.057] | does not vanish |" in claims
    )
    assert "| consistency | v1 rule, analytic (N = 8, tau = 0.8) | 0.187 | 0.057 | - |" in claims


def test_all_skips_an_experiment_whose_first_run_has_not_finished(tmp_path, monkeypatch, capsys):
    make_results(tmp_path / "results" / "minigrid_main")
    started = tmp_path / "results" / "consistency"
    started.mkdir()
    (started / "experiment.json").write_text("{}")  # the runner's first file
    monkeypatch.chdir(tmp_path)
    assert main(["--all", "--reps", "200"]) == 0
    assert "skipped results/consistency: no run has finished yet" in capsys.readouterr().out
    assert "| consistency | not run yet |  |  |  | main |" in (tmp_path / "RESULTS.md").read_text()
    assert main(["results/consistency"]) == 2  # asked for by name: an error
