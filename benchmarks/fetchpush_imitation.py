"""Why behaviour cloning did not learn FetchPush: offline imitation of two teachers by three
policies, measured on held-out start states with the mean action.

Teachers: the one shipped before issue 17 (``PhasedPushTeacher`` here), which keeps a phase
(up, over, down, push) that the policy cannot see, and the shipped ``FetchPushTeacher``, which
reads the phase off the state at every step, so that a memoryless policy can imitate it.
Policies: the group methods' Gaussian MLP before (2 x 64, raw observations), a 3 x 256 ReLU MLP
on observations standardised with the demonstrations' mean and standard deviation
(mean-squared error), and the group methods' Gaussian policy now (3 x 256 on running
standardisation); the Gaussians are cloned by negative log-likelihood. Each is trained on
``--episodes`` teacher episodes from training start states (50 env steps each) and evaluated
on 50 held-out start states.

    python benchmarks/fetchpush_imitation.py [--episodes 1000] [--epochs 50] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy

from hapo_rl.common.io import git_commit, write_json
from hapo_rl.core.policies import update_statistics
from hapo_rl.core.tasks import HELD_OUT_OFFSET, make_env
from hapo_rl.methods import METHODS
from hapo_rl.teachers.mujoco import HOLD, FetchPushTeacher, _fetch_state, _move

ENV = "FetchPush-v4"


class PhasedPushTeacher(FetchPushTeacher):
    """The FetchPush teacher shipped before: the same approach and push, but the phase (up,
    over, down, push) is kept in the teacher, where the policy cannot see it."""

    def reset(self, env: gym.Env, seed: int) -> None:
        super().reset(env, seed)
        self.phase = "up"

    def act(self, env: gym.Env, obs: Any) -> np.ndarray:
        grip, obj, goal = _fetch_state(env)
        line = self.push_line(obj, goal)
        if line is None:
            return HOLD.copy()
        u, behind = line
        if self.phase == "up":
            if grip[2] > obj[2] + self.height - 0.02:
                self.phase = "over"
            return _move(np.array([*grip[:2], obj[2] + self.height]), grip, 10.0, -1.0)
        if self.phase == "over":
            if np.linalg.norm(grip[:2] - behind[:2]) < 0.01:
                self.phase = "down"
            return _move(behind + [0.0, 0.0, self.height], grip, 10.0, -1.0)
        if self.phase == "down":
            if abs(grip[2] - obj[2]) < 0.01:
                self.phase = "push"
            return _move(behind, grip, 10.0, -1.0)
        offset = obj[:2] - grip[:2]
        lateral = offset - (offset @ u) * u
        if np.linalg.norm(lateral) > 0.015 or offset @ u < 0:
            self.phase = "up"
        return _move(np.array([*(goal[:2] - self.contact * u), obj[2]]), grip, 5.0, -1.0)


def episodes(env: gym.Env, teacher: Any, seeds: range) -> tuple[np.ndarray, np.ndarray, float]:
    """The teacher's observations and actions from ``seeds``, and its success rate."""
    obs_list, actions, wins = [], [], 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        teacher.reset(env, seed)
        while True:
            action = teacher.act(env, obs)
            obs_list.append(obs)
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                wins += bool(info["is_success"])
                break
    return (
        np.stack(obs_list).astype(np.float32),
        np.stack(actions).astype(np.float32),
        wins / len(seeds),
    )


def held_out(env: gym.Env, act: Any, n: int = 50) -> float:
    """Success rate of ``act(obs)`` from ``n`` held-out start states."""
    wins = 0
    for seed in range(HELD_OUT_OFFSET, HELD_OUT_OFFSET + n):
        obs, _ = env.reset(seed=seed)
        while True:
            obs, _, terminated, truncated, info = env.step(act(obs))
            if terminated or truncated:
                wins += bool(info["is_success"])
                break
    return wins / n


def _nll_fit(policy: ActorCriticPolicy, obs: np.ndarray, actions: np.ndarray, epochs: int) -> Any:
    x, y = th.as_tensor(obs), th.as_tensor(actions)
    for _ in range(epochs):
        for mb in th.randperm(len(x)).split(256):
            loss = -policy.get_distribution(x[mb]).log_prob(y[mb]).mean()
            policy.optimizer.zero_grad()
            loss.backward()
            policy.optimizer.step()
    return lambda o: policy.predict(o, deterministic=True)[0]


def small_gaussian(obs: np.ndarray, actions: np.ndarray, epochs: int) -> Any:
    """The group methods' policy before: a Gaussian 2 x 64 MLP on raw observations, cloned by
    negative log-likelihood; acts with its mean."""
    env = make_env(ENV)
    policy = ActorCriticPolicy(
        env.observation_space, env.action_space, lambda _: 3e-4, net_arch=[64, 64]
    )
    return _nll_fit(policy, obs, actions, epochs)


def project_gaussian(obs: np.ndarray, actions: np.ndarray, epochs: int) -> Any:
    """The group methods' policy now (``policy_kwargs_for``: a Gaussian 3 x 256 ReLU MLP on
    observations standardised by its running statistics), cloned by negative log-likelihood
    after the statistics have seen the demonstrations; acts with its mean."""
    method = METHODS["bc"]
    policy = method.cls(ENV, seed=0, **method.settings("bc", {})).policy
    update_statistics(policy, obs)
    return _nll_fit(policy, obs, actions, epochs)


def standardised_mlp(obs: np.ndarray, actions: np.ndarray, epochs: int) -> Any:
    """A 3 x 256 ReLU MLP on standardised observations, fitted by mean-squared error."""
    x, y = th.as_tensor(obs), th.as_tensor(actions)
    mean, std = x.mean(0), x.std(0) + 1e-4
    layers: list[th.nn.Module] = []
    for width_in in (x.shape[1], 256, 256):
        layers += [th.nn.Linear(width_in, 256), th.nn.ReLU()]
    net = th.nn.Sequential(*layers, th.nn.Linear(256, y.shape[1]))
    optimizer = th.optim.Adam(net.parameters(), 1e-3)
    z = (x - mean) / std
    for _ in range(epochs):
        for mb in th.randperm(len(z)).split(256):
            loss = ((net(z[mb]) - y[mb]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def act(o: np.ndarray) -> np.ndarray:
        with th.no_grad():
            return net((th.as_tensor(o, dtype=th.float32) - mean) / std).clamp(-1, 1).numpy()

    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("results/fetchpush_imitation.json"))
    args = parser.parse_args()
    th.manual_seed(0)
    env = make_env(ENV)
    rows = []
    for teacher_name, teacher in (
        ("phased (before)", PhasedPushTeacher()),
        ("shipped (stateless)", FetchPushTeacher()),
    ):
        obs, actions, train_success = episodes(env, teacher, range(args.episodes))
        held = range(HELD_OUT_OFFSET, HELD_OUT_OFFSET + 50)
        teacher_held_out = episodes(env, teacher, held)[2]
        for policy_name, fit in (
            ("gaussian 2x64, raw obs, NLL (before)", small_gaussian),
            ("3x256, standardised obs, MSE", standardised_mlp),
            ("gaussian 3x256, running standardisation, NLL (now)", project_gaussian),
        ):
            start = time.perf_counter()
            act = fit(obs, actions, args.epochs)
            row = {
                "teacher": teacher_name,
                "policy": policy_name,
                "teacher_train_success": train_success,
                "teacher_held_out_success": teacher_held_out,
                "held_out_success": held_out(env, act),
                "fit_s": time.perf_counter() - start,
            }
            rows.append(row)
            print(row, flush=True)
    write_json(
        args.out,
        {
            "rows": rows,
            "episodes": args.episodes,
            "epochs": args.epochs,
            "git_commit": git_commit(),
            "machine": platform.platform(),
            "command": "python benchmarks/fetchpush_imitation.py",
        },
    )


if __name__ == "__main__":
    main()
