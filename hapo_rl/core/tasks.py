"""Task registry: resolve ``--env`` to an env id, make envs, hold start-state pools.

A start state is a reset seed. Every task has a training pool (seeds ``0 .. n_train-1``) and a
disjoint held-out pool (seeds ``1_000_000 ..``) used only for evaluation. The start-state key of
the gate is the reset seed, for built-in and user envs alike: any env whose ``reset(seed=...)``
is deterministic given the seed works. A user env registered without a step limit gets one of
``EPISODE_LIMIT`` steps, so that an episode that never ends cannot hang a run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs import registration

from hapo_rl.envs import minigrid as minigrid_tasks
from hapo_rl.envs import mujoco as mujoco_tasks

HELD_OUT_OFFSET = 1_000_000
#: Step limit of a user env whose registration sets none (``max_episode_steps``).
EPISODE_LIMIT = 1_000

ALIASES: dict[str, str] = {
    alias: default
    for families in (minigrid_tasks.FAMILIES, mujoco_tasks.FAMILIES)
    for alias, (default, _) in families.items()
}


class TaskError(ValueError):
    """An env id, alias or teacher that cannot be used."""


def resolve_env_id(name: str) -> str:
    """Map a family alias to its default id, and an id without a version to its latest
    version (as ``gymnasium.make`` does), and check that the id is registered; ``module:Id``
    imports ``module`` first, as ``gymnasium.make`` does."""
    env_id = ALIASES.get(name, name)
    module, _, bare_id = env_id.rpartition(":")
    try:
        if module:
            importlib.import_module(module)
    except Exception as exc:  # any error in the user's module: a syntax error, a raise
        raise TaskError(
            f"env '{name}': importing {module} failed: {type(exc).__name__}: {exc}"
        ) from None
    if mujoco_tasks.is_mujoco(bare_id):
        mujoco_tasks.register()
    ns, env_name, version = registration.parse_env_id(bare_id)
    if version is None:
        latest = registration.find_highest_version(ns, env_name)
        if latest is not None:
            bare_id = registration.get_env_id(ns, env_name, latest)
            env_id = f"{module}:{bare_id}" if module else bare_id
    try:
        gym.spec(bare_id)
    except gym.error.Error as exc:
        known = ", ".join(sorted(ALIASES))
        raise TaskError(f"unknown env '{name}' ({exc}); aliases: {known}") from None
    return env_id


def make_source_env(env_id: str, **kwargs: Any) -> gym.Env:
    """The env as registered, before the policy's observation (PointMaze ending at its goal, a
    user env without a step limit given ``EPISODE_LIMIT``): what datasets record and what
    renders. ``kwargs`` go to ``gymnasium.make`` (``render_mode``)."""
    if minigrid_tasks.is_minigrid(env_id):
        return gym.make(env_id, **kwargs)
    if mujoco_tasks.is_mujoco(env_id):
        return mujoco_tasks.make_goal_env(env_id, **kwargs)
    module, _, bare_id = env_id.rpartition(":")
    if module:
        importlib.import_module(module)  # as gymnasium.make does, before reading the spec
    if gym.spec(bare_id).max_episode_steps is None:
        kwargs["max_episode_steps"] = EPISODE_LIMIT
    return gym.make(env_id, **kwargs)


def policy_view(env_id: str, source: gym.Env) -> gym.Env:
    """``source`` (from ``make_source_env``) as the policy sees it: MiniGrid ids get the
    full-grid observation, the sparse MuJoCo tasks a flat observation, user envs their own."""
    if minigrid_tasks.is_minigrid(env_id):
        return minigrid_tasks.make(env_id, source=source)
    if mujoco_tasks.is_mujoco(env_id):
        return mujoco_tasks.make(env_id, source=source)
    return source


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """Make one env as the policy sees it (``policy_view`` of ``make_source_env``)."""
    return policy_view(env_id, make_source_env(env_id, **kwargs))


def is_success(terminated: bool, reward: SupportsFloat, info: dict[str, Any]) -> bool:
    """An episode's success: ``info['is_success']`` (or PointMaze's ``info['success']``) where
    the env reports it, else a terminal step with positive reward (MiniGrid's goal test)."""
    for key in ("is_success", "success"):
        if key in info:
            return bool(info[key])
    return bool(terminated) and float(reward) > 0


_OBSERVATIONS = (
    gym.spaces.Box,
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
    gym.spaces.Dict,
)
_ACTIONS = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


def check_spaces(env_id: str, env: gym.Env) -> None:
    """Raise ``TaskError`` unless the policy can encode ``env``'s observations (a Dict's
    included) and emit its actions (stable-baselines3's spaces)."""
    obs, act = env.observation_space, env.action_space
    parts = obs.spaces.items() if isinstance(obs, gym.spaces.Dict) else [("", obs)]
    for key, space in parts:
        if not isinstance(space, _OBSERVATIONS) or isinstance(space, gym.spaces.Dict) and key:
            where = f" (key {key!r})" if key else ""
            raise TaskError(
                f"{env_id}: the policy cannot handle the observation space {space}" + where
            )
    if not isinstance(act, _ACTIONS):
        raise TaskError(f"{env_id}: the policy cannot handle the action space {act}")


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Task:
    """An env id with its training and held-out start-state pools."""

    env_id: str
    n_train: int = 500

    def make(self) -> gym.Env:
        return make_env(self.env_id)

    def check(self) -> None:
        """Make one env, ``check_spaces`` it, reset it from the first training start state and
        take one step; ``TaskError`` if any of it raises (a user env's bug)."""
        try:
            env = self.make()
        except Exception as exc:
            raise TaskError(f"{self.env_id}: making the env raised {_say(exc)}") from None
        try:
            check_spaces(self.env_id, env)
            for what, call in (
                ("reset", lambda: env.reset(seed=int(self.train_seeds[0]))),
                ("step", lambda: env.step(env.action_space.sample())),
            ):
                try:
                    call()
                except Exception as exc:
                    raise TaskError(f"{self.env_id}: {what} raised {_say(exc)}") from None
        finally:
            env.close()

    @property
    def train_seeds(self) -> np.ndarray:
        return np.arange(self.n_train)

    def eval_seeds(self, n: int) -> np.ndarray:
        return HELD_OUT_OFFSET + np.arange(n)


class StartStates(gym.Wrapper):
    """Start every episode from a start state drawn from ``pool``; ``reset(seed=s)`` seeds the
    draws, not the env. Marks each episode's last step with ``info["is_success"]``."""

    def __init__(self, env: gym.Env, pool: np.ndarray) -> None:
        super().__init__(env)
        self.pool = pool
        self.draws = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self.draws = np.random.default_rng(seed)
        return self.env.reset(seed=int(self.draws.choice(self.pool)), options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info["is_success"] = is_success(terminated, reward, info)
        return obs, reward, terminated, truncated, info
