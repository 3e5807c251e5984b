"""Sparse-reward MuJoCo tasks: gymnasium-robotics' PointMaze and Fetch, and a sparse Reacher.

Needs the ``mujoco`` extra (``pip install -e ".[mujoco]"``: mujoco 3.3.7 with
gymnasium-robotics 1.4.2; mujoco 4.0.0 breaks the Fetch tasks). The policy sees the
goal-conditioned dict observation flattened into one vector (``achieved_goal``,
``desired_goal``, ``observation``, in that order); teachers read the true state from
``env.unwrapped``. Success is the task's own: PointMaze's ``info["success"]`` (the episode ends
on reaching the goal), Fetch's ``info["is_success"]`` at the last step, the sparse Reacher's
fingertip within ``SparseReacher.radius`` of the target (the episode ends there).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

SPARSE_REACHER = "hapo_rl/SparseReacher-v0"

FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "PointMaze": (
        "PointMaze_Medium-v3",
        ("PointMaze_UMaze-v3", "PointMaze_Medium-v3", "PointMaze_Large-v3"),
    ),
    "FetchReach": ("FetchReach-v4", ("FetchReach-v4",)),
    "FetchPush": ("FetchPush-v4", ("FetchPush-v4",)),
    "SparseReacher": (SPARSE_REACHER, (SPARSE_REACHER,)),
}

TASK_IDS: tuple[str, ...] = tuple(i for _, ids in FAMILIES.values() for i in ids)


class SparseReacher(gym.Wrapper):
    """Reacher-v5 with reward 1 on the step the fingertip comes within ``radius`` of the
    target, which ends the episode, and 0 otherwise (50 steps at most)."""

    radius = 0.02

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, _, _, truncated, info = self.env.step(action)
        success = bool(np.linalg.norm(fingertip_to_target(self.env)) < self.radius)
        info["is_success"] = success
        return obs, float(success), success, truncated, info


def fingertip_to_target(env: gym.Env) -> np.ndarray:
    """The Reacher's target position minus its fingertip position (x, y)."""
    u = env.unwrapped
    return u.get_body_com("target")[:2] - u.get_body_com("fingertip")[:2]


def _make_sparse_reacher(**kwargs: Any) -> gym.Env:
    return SparseReacher(gym.make("Reacher-v5", **kwargs))


def register() -> None:
    """Register gymnasium-robotics' envs and the sparse Reacher (idempotent)."""
    try:
        import gymnasium_robotics
    except ImportError:
        raise ImportError(
            "the MuJoCo tasks need the mujoco extra: pip install 'hapo_rl[mujoco]'"
        ) from None
    gym.register_envs(gymnasium_robotics)
    if SPARSE_REACHER not in gym.registry:
        gym.register(SPARSE_REACHER, entry_point=_make_sparse_reacher, max_episode_steps=50)


def is_mujoco(env_id: str) -> bool:
    """Whether ``env_id`` is one of the sparse MuJoCo tasks here."""
    return env_id.split(":")[-1] in TASK_IDS


def make_goal_env(env_id: str, **kwargs: Any) -> gym.Env:
    """The task with its goal-conditioned dict observation (for HER); PointMaze ends at the
    goal. ``kwargs`` go to ``gymnasium.make`` (``render_mode``)."""
    register()
    if env_id.startswith("PointMaze"):
        kwargs["continuing_task"] = False
    return gym.make(env_id, **kwargs)


def is_goal_conditioned(env_id: str) -> bool:
    """Whether the task has achieved and desired goals (PointMaze and Fetch)."""
    return is_mujoco(env_id) and env_id.split(":")[-1] != SPARSE_REACHER


def make(env_id: str, source: gym.Env | None = None) -> gym.Env:
    """The task as the policy sees it: PointMaze ending at the goal, dict observations
    flattened; ``source`` is the goal env to wrap (made here if not given)."""
    env = make_goal_env(env_id) if source is None else source
    if isinstance(env.observation_space, gym.spaces.Dict):
        env = gym.wrappers.FlattenObservation(env)
    return env
