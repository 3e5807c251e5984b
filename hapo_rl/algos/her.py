"""Hindsight experience replay as a baseline: stable-baselines3's SAC with ``HerReplayBuffer``
('future' goals) on the goal-conditioned tasks, with the run-folder interface (``evaluate``,
``save_checkpoint``, ``last_stats``) and the same start-state pools as every method.

The policy sees the dict observation (HER relabels its goals). A checkpoint holds SB3's state,
the replay buffer (``<checkpoint>.buffer.pkl``, rotated with the checkpoint) and the torch,
numpy and Python RNG states; MuJoCo envs do not pickle their state, so a resumed run starts new
episodes where the checkpoint was taken instead of finishing the ones under way.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from hapo_rl.algos.sb3 import RunFolderMixin
from hapo_rl.common.io import atomic_write
from hapo_rl.core.config import HERConfig
from hapo_rl.core.rollout import evaluation_rng
from hapo_rl.core.tasks import StartStates, Task, is_success, resolve_env_id
from hapo_rl.envs.mujoco import is_goal_conditioned, make_goal_env


def _training_env(task: Task) -> gym.Env:
    return Monitor(StartStates(make_goal_env(task.env_id), task.train_seeds))


def _buffer_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".buffer.pkl")


class HERBaseline(RunFolderMixin, SAC):
    """SAC + HER on a goal-conditioned task's training pool.

    :param env: an env id, a family alias or a ``Task`` with a dict observation.
    :param env_workers: must be 0.
    :param settings: fields of ``HERConfig``.
    """

    config_class: ClassVar[type[HERConfig]] = HERConfig

    def __init__(
        self,
        env: str | Task | VecEnv | None,
        policy: str | type = "MultiInputPolicy",
        seed: int | None = None,
        device: str = "cpu",
        env_workers: int = 0,
        _init_setup_model: bool = True,
        **settings: Any,
    ) -> None:
        self.rng_states: dict[str, Any] | None = None
        if not _init_setup_model:  # SB3's load(): the saved attributes follow
            super().__init__(policy, env, device=device, _init_setup_model=False)
            return
        if env_workers:
            raise ValueError("env_workers applies to the group methods; her steps its env here")
        self.config = HERConfig(**settings)
        cfg = self.config
        env_id = env.env_id if isinstance(env, Task) else resolve_env_id(str(env))
        if not is_goal_conditioned(env_id):
            raise ValueError(f"her needs a goal-conditioned task (PointMaze, Fetch), not {env_id}")
        self.task = Task(env_id, n_train=cfg.n_train_seeds)
        self.task.check()
        self.teacher_steps = 0
        super().__init__(
            policy,
            DummyVecEnv([partial(_training_env, self.task)]),
            learning_rate=cfg.learning_rate,
            buffer_size=cfg.buffer_size,
            learning_starts=cfg.learning_starts,
            batch_size=cfg.batch_size,
            train_freq=cfg.train_freq,
            gradient_steps=cfg.gradient_steps,
            tau=cfg.target_tau,
            gamma=cfg.gamma,
            replay_buffer_class=HerReplayBuffer,
            replay_buffer_kwargs={
                "n_sampled_goal": cfg.n_sampled_goal,
                "goal_selection_strategy": "future",
            },
            policy_kwargs={"net_arch": [cfg.net_width] * 3},
            seed=seed,
            device=device,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        self._eval_env = make_goal_env(self.task.env_id)
        self._setup_run_folder()

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_eval_env", "_outcomes", "last_stats"]

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        super().train(gradient_steps, batch_size)
        self._record_update(self.train_freq.frequency)

    def save_checkpoint(self, path: Path) -> None:
        """Save with the replay buffer and the RNG states, each through a temporary file
        renamed into place, after moving the previous pair to ``<name>.prev.*``."""
        self._capture_rng_states()
        previous = path.with_suffix(".prev.zip")
        if path.exists():
            os.replace(path, previous)
            if _buffer_path(path).exists():
                os.replace(_buffer_path(path), _buffer_path(previous))
        atomic_write(_buffer_path(path), self.save_replay_buffer)
        atomic_write(path, self.save)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> HERBaseline:  # type: ignore[override]
        """Load a checkpoint with its replay buffer; training continues with new episodes."""
        data, _, _ = load_from_zip_file(path, load_data=True)  # the task, for its envs
        env = DummyVecEnv([partial(_training_env, data["task"])])
        model = super().load(path, env=env, **kwargs)
        env.seed(int(model.num_timesteps) + (model.seed or 0))
        if _buffer_path(Path(path)).exists():
            model.load_replay_buffer(_buffer_path(Path(path)))
        return model

    def evaluate(self, n_episodes: int, deterministic: bool = False) -> dict[str, float]:
        """Success rate, mean return and mean length on the first ``n_episodes`` held-out
        start states."""
        seeds = self.task.eval_seeds(n_episodes)
        with evaluation_rng(self.seed or 0):
            wins, returns, lengths = zip(*(self._episode(s, deterministic) for s in seeds))
        return {
            "success_rate": float(np.mean(wins)),
            "return_mean": float(np.mean(returns)),
            "length_mean": float(np.mean(lengths)),
        }

    def _episode(self, seed: int, deterministic: bool) -> tuple[bool, float, int]:
        """Success, return and length of one evaluation episode from start state ``seed``."""
        obs, _ = self._eval_env.reset(seed=int(seed))
        ret, steps = 0.0, 0
        while True:
            action, _ = self.predict(obs, deterministic=deterministic)
            obs, reward, terminated, truncated, info = self._eval_env.step(action)
            ret, steps = ret + float(reward), steps + 1
            if terminated or truncated:
                return is_success(terminated, reward, info), ret, steps
