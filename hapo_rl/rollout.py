"""Episode collection: many start states at once with batched policy inference, and teacher runs.

Every env runs exactly one episode from the seed it is given; ``terminated`` and ``truncated``
are kept apart on each episode. Steps of envs whose episode has ended are not taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

from hapo_rl.tasks import is_success
from hapo_rl.teachers.base import Teacher


@dataclass
class Episode:
    """One episode from one start state, as a policy's or a teacher's trajectory."""

    seed: int
    obs: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    rewards: np.ndarray
    success: bool
    terminated: bool
    from_teacher: bool = False

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        return float(self.rewards.sum())


class EnvPool:
    """Reusable env instances made on demand by ``make``."""

    def __init__(self, make: Callable[[], gym.Env]) -> None:
        self._make = make
        self._envs: list[gym.Env] = []

    def take(self, n: int) -> list[gym.Env]:
        while len(self._envs) < n:
            self._envs.append(self._make())
        return self._envs[:n]

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs.clear()


def _to_env_action(space: gym.Space, action: np.ndarray) -> np.ndarray | int:
    if isinstance(space, gym.spaces.Box):
        return np.clip(action, space.low, space.high)
    if isinstance(space, gym.spaces.Discrete):
        return int(action)
    return action


@th.no_grad()
def collect_episodes(
    envs: Sequence[gym.Env], seeds: Sequence[int], policy: BasePolicy, deterministic: bool = False
) -> list[Episode]:
    """Run one episode per ``(env, seed)`` pair, stepping all live envs with one policy call."""
    n = len(seeds)
    if len(envs) < n:
        raise ValueError(f"{n} seeds need {n} envs, got {len(envs)}")
    obs_now = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds)]
    traj: list[dict[str, list]] = [{"obs": [], "act": [], "logp": [], "rew": []} for _ in range(n)]
    ended: list[tuple[bool, bool] | None] = [None] * n
    live = list(range(n))
    space = envs[0].action_space
    while live:
        obs_batch = th.as_tensor(np.stack([obs_now[i] for i in live]), device=policy.device)
        dist = policy.get_distribution(obs_batch)
        actions = dist.get_actions(deterministic=deterministic)
        log_probs = dist.log_prob(actions).cpu().numpy()
        actions_np = actions.cpu().numpy()
        still = []
        for j, i in enumerate(live):
            obs, reward, terminated, truncated, info = envs[i].step(
                _to_env_action(space, actions_np[j])
            )
            t = traj[i]
            t["obs"].append(obs_now[i])
            t["act"].append(actions_np[j])
            t["logp"].append(log_probs[j])
            t["rew"].append(float(reward))
            if terminated or truncated:
                ended[i] = (bool(terminated), is_success(terminated, reward, info))
            else:
                obs_now[i] = obs
                still.append(i)
        live = still
    episodes = []
    for i, seed in enumerate(seeds):
        t, (terminated, success) = traj[i], ended[i]  # type: ignore[misc]
        episodes.append(
            Episode(
                seed=int(seed),
                obs=np.stack(t["obs"]),
                actions=np.stack(t["act"]),
                log_probs=np.asarray(t["logp"], np.float32),
                rewards=np.asarray(t["rew"], np.float32),
                success=success,
                terminated=terminated,
            )
        )
    return episodes


def teacher_episode(env: gym.Env, teacher: Teacher, seed: int) -> Episode:
    """Run the teacher from start state ``seed``. The stored observations are the policy's
    (what the wrapped env returns); the behaviour log-prob of a scripted action is 0."""
    obs, _ = env.reset(seed=int(seed))
    teacher.reset(env, int(seed))
    all_obs, actions, rewards = [], [], []
    while True:
        action = teacher.act(env, obs)
        if not env.action_space.contains(action):
            raise ValueError(f"the teacher returned {action!r}, outside {env.action_space}")
        next_obs, reward, terminated, truncated, info = env.step(action)
        all_obs.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        obs = next_obs
        if terminated or truncated:
            break
    return Episode(
        seed=int(seed),
        obs=np.stack(all_obs),
        actions=np.stack([np.asarray(a) for a in actions]),
        log_probs=np.zeros(len(actions), np.float32),
        rewards=np.asarray(rewards, np.float32),
        success=is_success(terminated, reward, info),
        terminated=bool(terminated),
        from_teacher=True,
    )
