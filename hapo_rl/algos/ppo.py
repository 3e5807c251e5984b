"""stable-baselines3's PPO as a baseline, with the project's network, start-state pools and
run-folder interface (``evaluate``, ``save_checkpoint``, ``last_stats``).

The training envs reset from start states drawn from the training pool (``StartStates``);
evaluation uses the held-out pool as for every method. A checkpoint holds, besides SB3's own
state, the training envs mid-episode and the torch, numpy and Python RNG states, so a resumed
run continues exactly where the checkpoint was taken (checkpoints fall between rollouts). That
holds for envs that pickle their state (MiniGrid); gymnasium's MuJoCo envs rebuild themselves
when unpickled, so there a resumed run does not reproduce the uninterrupted one.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from hapo_rl.algos.sb3 import RunFolderMixin
from hapo_rl.common.io import atomic_write
from hapo_rl.core.config import PPOConfig
from hapo_rl.core.envpool import EnvPool
from hapo_rl.core.policies import policy_kwargs_for, update_statistics
from hapo_rl.core.rollout import evaluate
from hapo_rl.core.tasks import StartStates, Task, resolve_env_id


def _training_env(task: Task) -> gym.Env:
    return Monitor(StartStates(task.make(), task.train_seeds))


class PPOBaseline(RunFolderMixin, PPO):
    """SB3 PPO on a task's training pool.

    :param env: an env id, a family alias or a ``Task``.
    :param env_workers: must be 0: PPO steps its ``n_envs`` envs in this process.
    :param settings: fields of ``PPOConfig`` (see ``python -m hapo_rl.run --help``).
    """

    config_class: ClassVar[type[PPOConfig]] = PPOConfig

    def __init__(
        self,
        env: str | Task | VecEnv | None,
        policy: str | type = "MlpPolicy",
        seed: int | None = None,
        device: str = "cpu",
        env_workers: int = 0,
        _init_setup_model: bool = True,
        **settings: Any,
    ) -> None:
        self.rng_states: dict[str, Any] | None = None
        if not _init_setup_model:  # SB3's load(): the saved env and attributes follow
            super().__init__(policy, env, device=device, _init_setup_model=False)
            return
        if env_workers:
            raise ValueError("env_workers applies to the group methods; ppo steps its envs here")
        self.config = PPOConfig(**settings)
        cfg = self.config
        task = env if isinstance(env, Task) else Task(resolve_env_id(str(env)))
        self.task = Task(task.env_id, n_train=cfg.n_train_seeds)
        self.task.check()
        self.teacher_steps = 0
        vec_env = DummyVecEnv([partial(_training_env, self.task)] * cfg.n_envs)
        if isinstance(vec_env.observation_space, gym.spaces.Dict):
            policy = "MultiInputPolicy"
        super().__init__(
            policy,
            vec_env,
            learning_rate=cfg.learning_rate,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            policy_kwargs=policy_kwargs_for(self.task.env_id),
            seed=seed,
            device=device,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        self._eval_pool = EnvPool(self.task.make)
        self._setup_run_folder()

    def _excluded_save_params(self) -> list[str]:
        # the training envs are saved (mid-episode, with their draws) so a resume is exact
        kept = [p for p in super()._excluded_save_params() if p != "env"]
        return [*kept, "_eval_pool", "_outcomes", "last_stats"]

    def train(self) -> None:
        super().train()
        update_statistics(self.policy, self.rollout_buffer.observations)
        loss = float(self.logger.name_to_value.get("train/loss", float("nan")))
        self._record_update(self.n_steps * self.n_envs, loss)

    def save_checkpoint(self, path: Path) -> None:
        """Save with the RNG states, through a temporary file renamed into place, after moving
        the previous checkpoint to ``<name>.prev.zip``."""
        self._capture_rng_states()
        if path.exists():
            os.replace(path, path.with_suffix(".prev.zip"))
        atomic_write(path, self.save)

    def evaluate(self, n_episodes: int, deterministic: bool = False) -> dict[str, float]:
        """Success rate, mean return and mean length on the first ``n_episodes`` held-out
        start states."""
        seeds = self.task.eval_seeds(n_episodes)
        return evaluate(self._eval_pool, seeds, self.policy, deterministic, self.seed or 0)
