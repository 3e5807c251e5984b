"""The baselines: every method through the CLI, exact resume for each, and what makes BC,
bc-grpo, JSRL and PPO what they are, on the tiny corridor."""

import json

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from hapo_rl import BC, GRPO, HAPO, JSRL, PPOBaseline
from hapo_rl.core.rollout import collect_episodes
from hapo_rl.methods import METHODS
from hapo_rl.run import main
from hapo_rl.teachers.episodes import perturbation
from tests.tiny import RightTeacher

ENV = "tests.tiny:Corridor-v0"
TEACHER = "tests.tiny:RightTeacher"
GROUPS = ["--group-size", "4", "--groups-per-iter", "4", "--n-train-seeds", "16"]
SETTINGS = {
    "hapo": GROUPS,
    "hapo-paper": GROUPS,
    "grpo": GROUPS,
    "always-inject": GROUPS,
    "mixed": GROUPS,
    "bc": ["--demos-per-iter", "4", "--n-train-seeds", "16"],
    "bc-grpo": [*GROUPS, "--warm-start-demos", "16"],
    "jsrl": [*GROUPS, "--jsrl-stages", "4"],
    "ppo": ["--n-envs", "2", "--n-steps", "64", "--n-train-seeds", "16"],
}


def run_args(algo, run_dir, steps=1500, every=500):
    teacher = ["--teacher", TEACHER] if METHODS[algo].uses_teacher else []
    return [
        "--env", ENV, "--algo", algo, *teacher, *SETTINGS[algo], "--no-progress",
        "--total-steps", str(steps), "--eval-every", str(every), "--eval-episodes", "10",
        "--run-dir", str(run_dir),
    ]  # fmt: skip


def test_every_method_is_in_the_test_table():
    assert set(SETTINGS) == set(METHODS) - {"her"}  # her needs goals: tests/test_mujoco.py


@pytest.mark.parametrize("algo", list(SETTINGS))
def test_every_method_trains_records_and_resumes_exactly(tmp_path, algo):
    run_dir = tmp_path / "run"
    assert main(run_args(algo, run_dir)) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    whole = pd.read_csv(run_dir / "curves.csv").drop(columns="wall_time_s")
    assert summary["algo"] == algo and summary["total_steps"] >= 1500
    assert len(whole) >= 4 and whole["step"].is_monotonic_increasing
    uses_teacher = METHODS[algo].uses_teacher and algo != "hapo"  # hapo may not need it
    assert (summary["teacher_steps"] > 0) == uses_teacher or algo == "hapo"
    assert summary["teacher_steps"] <= summary["total_steps"]
    # resume from the checkpoint before the last one: the run must end the same way
    (run_dir / "summary.json").unlink()
    (run_dir / "model.prev.zip").replace(run_dir / "model.zip")
    assert main(["--resume", "--run-dir", str(run_dir), "--no-progress"]) == 0
    resumed = pd.read_csv(run_dir / "curves.csv").drop(columns="wall_time_s")
    pd.testing.assert_frame_equal(whole, resumed)


def test_bc_learns_the_corridor_from_the_teacher_alone():
    model = BC(
        ENV, teacher=RightTeacher(), seed=0, demos_per_iter=4, n_train_seeds=16, learning_rate=3e-3
    )
    assert model.evaluate(20)["success_rate"] < 0.1
    model.learn(2000)
    assert model.teacher_steps == model.num_timesteps  # every step is the teacher's
    assert len(model.dataset) > 0
    assert model.evaluate(20)["success_rate"] >= 0.9


def test_bc_runs_the_teacher_from_every_training_start_state_before_any_twice():
    model = BC(ENV, teacher=RightTeacher(), seed=0, demos_per_iter=3, n_train_seeds=10)
    draws = [model._draw() for _ in range(4)]
    first = np.concatenate(draws[:3])
    assert sorted(first[:9]) == sorted(set(first[:9])) and len(set(first)) == 9
    assert set(draws[3][:1]) == set(range(10)) - set(first)  # the last fresh one, then repeats
    assert len(set(draws[3])) == 3


def test_bc_demo_noise_executes_perturbed_actions_keeps_the_teachers_and_every_episode():
    model = BC(ENV, teacher=RightTeacher(), seed=0, demos_per_iter=4, n_train_seeds=16)
    noisy = BC(
        ENV, teacher=RightTeacher(), seed=0, demos_per_iter=4, n_train_seeds=16, demo_noise=0.5
    )
    model._iteration()
    charged = noisy._iteration().env_steps + noisy._iteration().env_steps
    assert all(e.success and e.length == 12 for e in model.dataset.values())
    episodes = list(noisy.dataset.values())
    assert len(episodes) == 8  # every episode joins, failed or not, none replaced
    assert any(not e.success for e in episodes)  # random steps left cost the walk its goal
    assert all((e.actions == 1).all() for e in episodes)  # the teacher's own actions
    positions = np.concatenate([e.obs.argmax(1) for e in episodes])
    assert (np.diff(positions) < 0).any()  # but the env executed some left steps
    assert charged == sum(e.length for e in episodes)  # every step charged


def test_demo_noise_perturbs_continuous_actions_within_the_bounds():
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    perturb = perturbation(space, 0.1, np.random.default_rng(0))
    actions = np.stack([perturb(np.array([0.0, 1.0], np.float32)) for _ in range(2000)])
    assert space.contains(actions[0]) and (np.abs(actions) <= 1).all()
    assert abs(actions[:, 0].std() - 0.1) < 0.01 and abs(actions[:, 0].mean()) < 0.01
    assert (actions[:, 1] <= 1).all() and (actions[:, 1] < 1).mean() > 0.4  # clipped at 1


def test_the_progress_bar_says_while_bc_grpo_clones_its_warm_start(tmp_path, capsys):
    for algo in ("bc-grpo", "hapo"):
        args = run_args(algo, tmp_path / algo, steps=600)
        assert main([a for a in args if a != "--no-progress"]) == 0
        bar = capsys.readouterr().err
        assert ("warm start: cloning 16 teacher episodes, 20 passes" in bar) == (algo == "bc-grpo")
        assert "600/600" in bar


def test_bc_grpo_warm_start_is_charged_and_cloned():
    model = HAPO(
        ENV, teacher=RightTeacher(), seed=0, gate="never", warm_start_demos=16,
        warm_start_epochs=50, learning_rate=3e-3, group_size=4, groups_per_iter=4,
        n_train_seeds=16,
    )  # fmt: skip
    stats = model._iteration()
    assert stats.env_steps == stats.teacher_steps == 16 * 12  # 16 teacher episodes of 12 steps
    assert model.evaluate(20)["success_rate"] >= 0.9
    later = model._iteration()
    assert later.teacher_steps == 0 and later.injection_rate == 0  # then plain GRPO


def test_bc_grpo_warm_start_noise_clones_every_perturbed_episode(monkeypatch):
    cloned = []
    monkeypatch.setattr(
        "hapo_rl.algos.hapo.clone", lambda policy, episodes, *a: cloned.extend(episodes) or 0.0
    )
    model = HAPO(
        ENV, teacher=RightTeacher(), seed=0, gate="never", warm_start_demos=16,
        warm_start_noise=0.5, group_size=4, groups_per_iter=4, n_train_seeds=16,
    )  # fmt: skip
    stats = model._iteration()
    assert len(cloned) == 16 and any(not e.success for e in cloned)  # failed ones too
    assert all((e.actions == 1).all() for e in cloned)  # the teacher's own actions
    positions = np.concatenate([e.obs.argmax(1) for e in cloned])
    assert (np.diff(positions) < 0).any()  # but the env executed some left steps
    assert stats.env_steps == stats.teacher_steps == sum(e.length for e in cloned)
    assert model._perturbation() is None  # the warm start over, the teacher acts as it is


def test_jsrl_rolls_in_with_the_teachers_prefix_and_charges_it():
    model = JSRL(
        ENV, teacher=RightTeacher(), seed=0, jsrl_stages=4, group_size=4, groups_per_iter=4,
        n_train_seeds=16,
    )  # fmt: skip
    assert model.rollin_fraction == 0.75
    rollins, teacher_steps = model._rollins(np.array([3, 5]))
    assert teacher_steps == 2 * 12 and [len(r) for r in rollins] == [9, 9]
    stats = model._iteration()
    # the roll-in (4 groups x 4 episodes x 9 steps) and the teacher's runs are charged
    assert stats.teacher_steps == 16 * 9 + 4 * 12
    assert stats.env_steps > stats.teacher_steps


def test_jsrl_curriculum_hands_over_to_the_policy():
    model = JSRL(
        ENV, teacher=RightTeacher(), seed=0, jsrl_stages=4, group_size=8, groups_per_iter=8,
        n_train_seeds=32, learning_rate=1e-3,
    )  # fmt: skip
    model.learn(40_000)
    assert model.stage == 4 and model.rollin_fraction == 0
    assert model.evaluate(50)["success_rate"] >= 0.9


def test_ppo_draws_training_start_states_and_records_success():
    model = PPOBaseline(ENV, seed=0, n_envs=2, n_steps=64, n_train_seeds=4)
    model.learn(256)
    wrappers = [env.env for env in model.env.envs]  # Monitor -> StartStates
    assert all(set(w.pool) == {0, 1, 2, 3} for w in wrappers)
    assert model.last_stats is not None and model.last_stats.env_steps == 128


def test_the_budget_ends_mid_iteration_and_cut_groups_are_not_learnt_from():
    model = GRPO(ENV, seed=0, group_size=4, groups_per_iter=4, n_train_seeds=16)
    model.learn(1000)  # iterations of 16 failing 14-step episodes: 224 steps each
    assert model.num_timesteps == 1000
    assert np.isnan(model.last_stats.injection_rate)  # the last 104 steps: every group cut


def test_collect_stops_at_max_steps_and_marks_the_cut_episodes():
    model = GRPO(ENV, seed=0, group_size=4, groups_per_iter=4, n_train_seeds=16)
    episodes = collect_episodes(model._envs, [1, 1, 2, 2], model.policy, max_steps=10)
    assert sum(e.length for e in episodes) == 10
    assert all(e.cut and not e.success for e in episodes)
    assert [e.length for e in episodes] == [3, 3, 2, 2]  # leftover steps go to the first envs
