"""The sparse MuJoCo tasks: their scripted teachers succeed, success is the task's own, and
HAPO's continuous-action path (Gaussian policy, teacher injection) trains."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from hapo_rl import BC, HAPO, PPOBaseline
from hapo_rl.core.policies import Standardise
from hapo_rl.core.tasks import is_success, make_env, resolve_env_id
from hapo_rl.envs.mujoco import SPARSE_REACHER
from hapo_rl.run import main
from hapo_rl.teachers.base import NoisyTeacher
from hapo_rl.teachers.registry import load_teacher

HELD_OUT = 1_000_000


def teacher_runs(env_id, episodes, teacher=None):
    """Success rate and mean number of steps to the first success (of the successes)."""
    env, teacher = make_env(env_id), teacher or load_teacher(env_id)
    wins, steps_to_success = [], []
    for seed in range(HELD_OUT, HELD_OUT + episodes):
        obs, _ = env.reset(seed=seed)
        teacher.reset(env, seed)
        first, steps = None, 0
        while True:
            obs, reward, terminated, truncated, info = env.step(teacher.act(env, obs))
            steps += 1
            if first is None and is_success(terminated, reward, info):
                first = steps
            if terminated or truncated:
                break
        wins.append(is_success(terminated, reward, info))
        steps_to_success += [first] if first else []
    return float(np.mean(wins)), float(np.mean(steps_to_success))


def teacher_success(env_id, episodes, teacher=None):
    return teacher_runs(env_id, episodes, teacher)[0]


@pytest.mark.parametrize(
    "env_id, episodes, at_least",
    [
        ("PointMaze_UMaze-v3", 10, 1.0),
        ("PointMaze_Medium-v3", 5, 1.0),
        ("FetchReach-v4", 5, 1.0),
        ("FetchPush-v4", 10, 0.7),
        (SPARSE_REACHER, 20, 1.0),
    ],
)
def test_scripted_teachers_solve_held_out_start_states(env_id, episodes, at_least):
    assert teacher_success(env_id, episodes) >= at_least


def test_a_random_teacher_fails_where_the_scripted_one_succeeds():
    noisy = NoisyTeacher(load_teacher(SPARSE_REACHER), epsilon=1.0)
    assert teacher_success(SPARSE_REACHER, 20, noisy) <= 0.2


@pytest.mark.parametrize(
    "env_id", ["PointMaze_UMaze-v3", "PointMaze_Medium-v3", "FetchReach-v4", SPARSE_REACHER]
)
def test_detouring_teachers_take_longer_and_still_succeed(env_id):
    direct_success, direct_steps = teacher_runs(env_id, 10)
    detour_success, detour_steps = teacher_runs(env_id, 10, load_teacher(env_id, detour=1.0))
    assert direct_success == detour_success == 1.0
    assert detour_steps > 1.5 * direct_steps


def test_aliases_and_flat_observations():
    assert resolve_env_id("PointMaze") == "PointMaze_Medium-v3"
    env = make_env("FetchPush-v4")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (31,) and env.observation_space.shape == (31,)


def test_hapo_injects_teacher_episodes_with_a_gaussian_policy():
    model = HAPO(
        "PointMaze_UMaze-v3", seed=0, gate="always", group_size=2, groups_per_iter=2,
        n_train_seeds=8,
    )  # fmt: skip
    stats = model._iteration()
    assert stats.teacher_steps > 0 and stats.teacher_step_share > 0
    assert np.isfinite(stats.loss)
    action, _ = model.predict(model.observation_space.sample())
    assert action.shape == (2,)


def test_her_trains_checkpoints_with_its_buffer_and_resumes(tmp_path):
    run_dir = tmp_path / "her"
    args = ["--algo", "her", "--env", "FetchReach-v4", "--total-steps", "600", "--eval-every",
            "200", "--eval-episodes", "2", "--learning-starts", "100", "--batch-size", "32",
            "--net-width", "32", "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert json.loads((run_dir / "config.json").read_text())["headline_eval"] == "greedy"
    assert (run_dir / "model.buffer.pkl").is_file() and (
        run_dir / "model.prev.buffer.pkl"
    ).is_file()
    (run_dir / "summary.json").unlink()
    (run_dir / "model.prev.zip").replace(run_dir / "model.zip")
    (run_dir / "model.prev.buffer.pkl").replace(run_dir / "model.buffer.pkl")
    assert main(["--resume", "--run-dir", str(run_dir), "--no-progress"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algo"] == "her" and summary["total_steps"] >= 600


def test_her_refuses_a_task_without_goals(capsys):
    assert main(["--algo", "her", "--env", SPARSE_REACHER, "--total-steps", "100"]) == 2
    assert "her needs a goal-conditioned task" in capsys.readouterr().err


def test_a_pointmaze_detour_avoids_the_goal_where_it_can():
    from hapo_rl.teachers.mujoco import _detour_route

    # a corridor: start (1, 1), goal (1, 3); cells (1, 4) and (1, 5) lie beyond the goal
    grid = np.array([[1] * 7, [1, 0, 0, 0, 0, 0, 1], [1] * 7])
    for seed in range(20):
        route = _detour_route(grid, (1, 1), (1, 3), seed)
        assert route[0] == (1, 1) and route[-1] == (1, 3)
        assert (1, 3) not in route[:-1]  # the goal is reached only at the end
        assert all(abs(a - c) + abs(b - d) == 1 for (a, b), (c, d) in zip(route, route[1:]))
    # a dead end whose only way out passes the goal: the detour goes past it and back
    route = _detour_route(grid, (1, 1), (1, 2), 0)
    assert route[0] == (1, 1) and route[-1] == (1, 2) and len(route) > 3


def test_standardise_keeps_the_statistics_of_every_batch_and_clips():
    space = gym.spaces.Box(-np.inf, np.inf, (3,))
    norm = Standardise(space, clip=5.0, eps=1e-2)
    x = th.tensor([[1.0, 2.0, 3.0]])
    assert th.allclose(norm(x), x, atol=1e-3)  # the identity before any update
    rng = np.random.default_rng(0)
    a, b = rng.normal(2.0, 3.0, (50, 3)), rng.normal(-1.0, 0.5, (7, 3))
    norm.update(a)
    norm.update(b)
    both = np.concatenate([a, b])
    assert np.allclose(norm.mean.numpy(), both.mean(0)) and np.allclose(norm.var, both.var(0))
    z = norm(th.as_tensor(both[:4], dtype=th.float32)).numpy()
    expected = (both[:4] - both.mean(0)) / np.sqrt(both.var(0) + 1e-4)
    assert np.allclose(z, expected, atol=1e-5)
    far = th.full((1, 3), 1e6)
    assert th.all(norm(far) == 5.0)


def test_group_methods_update_the_statistics_after_the_update_they_sampled_for(monkeypatch):
    model = HAPO(
        "PointMaze_UMaze-v3", seed=0, gate="always", warm_start_demos=0, group_size=2,
        groups_per_iter=2, n_train_seeds=4,
    )  # fmt: skip
    extractor = model.policy.features_extractor
    assert isinstance(extractor, Standardise)
    counts, update = [], model._update

    def checked(batch_eps):
        counts.append(float(extractor.count))
        for episode in [e for e, _ in batch_eps if not e.from_teacher]:
            # the policy still gives the probabilities the episode was sampled with
            dist = model.policy.get_distribution(th.as_tensor(episode.obs))
            assert np.allclose(
                dist.log_prob(th.as_tensor(episode.actions)).detach(), episode.log_probs, atol=1e-4
            )
        return update(batch_eps)

    monkeypatch.setattr(model, "_update", checked)
    stats = [model._iteration() for _ in range(2)]
    assert counts[0] == 0 < counts[1] < float(extractor.count)
    assert all(s.teacher_steps > 0 for s in stats)


def test_bc_and_ppo_update_the_statistics_and_a_checkpoint_keeps_them(tmp_path):
    bc = BC("PointMaze_UMaze-v3", seed=0, demos_per_iter=2, n_train_seeds=4)
    stats = bc._iteration()
    assert float(bc.policy.features_extractor.count) == stats.env_steps > 0
    bc.save(tmp_path / "bc.zip")
    loaded = BC.load(tmp_path / "bc.zip")
    assert th.equal(loaded.policy.features_extractor.mean, bc.policy.features_extractor.mean)
    ppo = PPOBaseline("PointMaze_UMaze-v3", seed=0, n_steps=64, n_envs=1, batch_size=32)
    ppo.learn(64)
    assert float(ppo.policy.features_extractor.count) == 64


def test_bc_clones_the_pointmaze_teacher_with_the_mean_action():
    model = BC("PointMaze_UMaze-v3", seed=0, n_epochs=20, n_train_seeds=100)
    assert model.evaluate(20, deterministic=True)["success_rate"] <= 0.1
    model.learn(1500)
    assert model.evaluate(20, deterministic=True)["success_rate"] >= 0.9
