"""GRPO for Gymnasium tasks: G on-policy episodes per start state, group-relative advantages,
clipped ratio loss, no critic.

One iteration: draw ``groups_per_iter`` start states from the training pool, run
``group_size`` episodes from each, let ``_augment_groups`` change the groups (a no-op here; HAPO
injects teacher episodes), compute advantages per group, and take ``n_epochs`` passes of
minibatch gradient steps over the steps of every group whose advantages are not all zero.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from hapo_rl.common.io import atomic_write
from hapo_rl.common.timing import Stopwatch
from hapo_rl.core.advantages import group_advantages
from hapo_rl.core.config import GroupConfig
from hapo_rl.core.envpool import EnvPool
from hapo_rl.core.policies import policy_kwargs_for, update_statistics
from hapo_rl.core.rollout import Episode, collect_episodes, evaluate, success_rate
from hapo_rl.core.tasks import Task, resolve_env_id


class NumericalError(RuntimeError):
    """A NaN or infinite loss or parameter."""


@dataclass
class IterationStats:
    """What one iteration did; the run's curves average these between evaluation points."""

    env_steps: int
    teacher_steps: int
    train_success_rate: float
    injection_rate: float
    teacher_step_share: float
    zero_adv_group_frac: float
    replayed_episodes: float = float("nan")  # stored teacher episodes replayed (HAPO family)
    loss: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)  # method-specific, TensorBoard only


def step_weights(
    lengths: list[int],
    failed: list[bool],
    loss_agg: str,
    fail_step_frac: float = 1.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which steps of the episodes (of ``lengths``) enter the update, and their loss weights.

    Each step weighs 1 (``loss_agg="step"``) or 1/length of its episode (``"episode"``). With
    ``fail_step_frac`` q < 1 a step of a ``failed`` episode is kept with probability q and
    weighted 1/q, so every weight's expectation is unchanged; ``rng`` is used only then.
    Returns the mask over all steps and the weights of the kept ones."""
    w = np.concatenate(
        [np.full(n, 1.0 if loss_agg == "step" else 1.0 / n, np.float32) for n in lengths]
    )
    if fail_step_frac >= 1.0:
        return np.ones(len(w), bool), w
    fail = np.repeat(np.asarray(failed, bool), lengths)
    keep = ~fail | (rng.random(len(w)) < fail_step_frac)
    w = np.where(fail, w / fail_step_frac, w).astype(np.float32)
    return keep, w[keep]


class GRPO(BaseAlgorithm):
    """Group-relative policy optimisation on reset-seed start states.

    :param env: an env id, a family alias or a ``Task``.
    :param env_workers: worker processes that step the envs (0: step them in this process);
        results do not depend on it.
    :param settings: fields of ``GroupConfig`` (see ``python -m hapo_rl.run --help``).
    """

    config_class: ClassVar[type[GroupConfig]] = GroupConfig
    policy_aliases: ClassVar[dict[str, type[ActorCriticPolicy]]] = {"default": ActorCriticPolicy}
    uses_groups: ClassVar[bool] = True  # its updates learn from groups of episodes

    def __init__(
        self,
        env: str | Task | None,
        policy: str | type[ActorCriticPolicy] = "default",
        seed: int | None = None,
        device: str = "cpu",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        env_workers: int = 0,
        _init_setup_model: bool = True,
        **settings: Any,
    ) -> None:
        self.config = self.config_class(**settings) if _init_setup_model else None
        self.task = env if isinstance(env, Task) or env is None else Task(resolve_env_id(env))
        if self.task is not None and self.config is not None:
            self.task = Task(self.task.env_id, n_train=self.config.n_train_seeds)
            self.task.check()
        super().__init__(
            policy=policy,
            env=DummyVecEnv([self.task.make]) if self.task is not None else None,
            learning_rate=(self.config or GroupConfig()).learning_rate,
            policy_kwargs=policy_kwargs_for(self.task.env_id) if self.task else None,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            supported_action_spaces=None,
        )
        self.env_workers = env_workers
        self.teacher_steps = 0
        self.learnt_groups = 0  # groups the updates have learnt from, over the whole run
        self.last_stats: IterationStats | None = None
        self.rng: np.random.Generator | None = None
        self.torch_rng_state: th.Tensor | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if getattr(self, "rng", None) is None:  # a loaded model keeps its saved generator
            self.rng = np.random.default_rng(self.seed)
        if self.env is None:
            self.env = DummyVecEnv([self.task.make])
        self.policy = self.policy_class(
            self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs
        ).to(self.device)
        self._envs = EnvPool(self.task.make, self.env_workers)
        self.watch = Stopwatch()
        if getattr(self, "torch_rng_state", None) is not None:
            th.set_rng_state(self.torch_rng_state)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_envs", "last_stats", "watch", "_budget_end"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    # -- one iteration -------------------------------------------------------------------

    def _horizons(self, keys: np.ndarray) -> tuple[list[int | None] | None, int]:
        """Step limits of the on-policy episodes from ``keys`` (None: the task's own) and the
        env steps spent deciding them. GRPO runs every episode to the task's limit."""
        return None, 0

    def _replays(
        self, groups: list[list[Episode]], advantages: list[np.ndarray]
    ) -> list[tuple[Episode, float]]:
        """Episodes joining the update beside the groups (whose ``advantages`` are given), with
        their advantages, at no env cost. GRPO has none."""
        return []

    def _augment_groups(self, groups: list[list[Episode]]) -> tuple[list[list[Episode]], int]:
        """Change the groups before advantages are computed; returns the groups and the env
        steps this took. GRPO leaves them as they are."""
        return groups, 0

    def _step_loss(
        self,
        log_probs: th.Tensor,
        old_log_probs: th.Tensor,
        adv: th.Tensor,
        teacher: th.Tensor,
        dist: Distribution,
        actions: th.Tensor,
    ) -> th.Tensor:
        """Per-step policy loss (``dist`` the policy's distribution at the steps, ``actions``
        the actions taken). On-policy steps: PPO's clipped ratio objective."""
        ratio = th.exp(log_probs - old_log_probs)
        clip = self.config.clip_range
        return -th.min(ratio * adv, th.clamp(ratio, 1 - clip, 1 + clip) * adv)

    def _iteration(self) -> IterationStats:
        cfg = self.config
        keys = self.rng.choice(self.task.train_seeds, size=cfg.groups_per_iter, replace=False)
        seeds = np.repeat(keys, cfg.group_size)
        horizons, teacher_steps = self._horizons(keys)
        self.policy.set_training_mode(False)
        episodes = collect_episodes(
            self._envs,
            seeds,
            self.policy,
            watch=self.watch,
            max_steps=self._remaining(),
            horizons=None if horizons is None else np.repeat(horizons, cfg.group_size).tolist(),
        )
        on_policy_steps = sum(e.length for e in episodes)
        train_success = success_rate(episodes)
        groups, injected_steps = self._augment_groups(self._complete_groups(episodes))
        teacher_steps += injected_steps
        return self._learn_from_groups(
            groups, on_policy_steps + teacher_steps, teacher_steps, train_success
        )

    def _remaining(self) -> int | None:
        """Env steps left in the budget of the current ``learn`` call (None outside one)."""
        end = getattr(self, "_budget_end", None)
        return None if end is None else max(end - self.num_timesteps, 1)

    def _complete_groups(self, episodes: list[Episode]) -> list[list[Episode]]:
        """The groups (consecutive episodes from one start state) that the budget did not cut
        short; a cut group's steps are charged but not learnt from."""
        groups = [list(g) for _, g in itertools.groupby(episodes, key=lambda e: e.seed)]
        return [g for g in groups if len(g) == self.config.group_size and not any(e.cut for e in g)]

    def _learn_from_groups(
        self, groups: list[list[Episode]], env_steps: int, teacher_steps: int, train_success: float
    ) -> IterationStats:
        """Group-relative advantages, then the update on every group whose advantages are not
        all zero; the iteration's statistics."""
        cfg = self.config
        adv = [  # per group: groups may differ in size once episodes are added
            group_advantages(np.array([[e.ret for e in g]]), cfg.adv_baseline, cfg.adv_scale)[0]
            for g in groups
        ]
        live = [i for i in range(len(groups)) if np.any(np.abs(adv[i]) > 1e-8)]
        self.learnt_groups += len(groups)
        n_injected = sum(any(e.from_teacher for e in g) for g in groups)
        replays = self._replays(groups, adv)
        batch_eps = [(e, adv[i][j]) for i in live for j, e in enumerate(groups[i])] + replays
        batch_steps = sum(e.length for e, _ in batch_eps)
        t_steps = sum(e.length for e, _ in batch_eps if e.from_teacher)
        with self.watch.section("learn"):
            loss = self._update(batch_eps) if batch_eps else 0.0
        if groups:  # after the update, which used the statistics the episodes were sampled with
            update_statistics(self.policy, np.concatenate([e.obs for g in groups for e in g]))
        n = len(groups) or float("nan")  # every group cut by the budget: nothing to report
        return IterationStats(
            env_steps=env_steps,
            teacher_steps=teacher_steps,
            train_success_rate=train_success,
            injection_rate=n_injected / n,
            teacher_step_share=t_steps / batch_steps if batch_steps else 0.0,
            zero_adv_group_frac=1 - len(live) / n,
            replayed_episodes=float(len(replays)),
            loss=loss,
        )

    def _update(self, batch_eps: list[tuple[Episode, float]]) -> float:
        """``n_epochs`` passes of minibatch steps over the episodes' steps (``step_weights``
        picks and weighs them); returns the last loss."""
        cfg = self.config
        self.policy.set_training_mode(True)
        keep, w = step_weights(
            [e.length for e, _ in batch_eps],
            [not (e.success or e.from_teacher) for e, _ in batch_eps],
            cfg.loss_agg,
            cfg.fail_step_frac,
            self.rng,
        )
        obs = th.as_tensor(np.concatenate([e.obs for e, _ in batch_eps])[keep])
        actions = th.as_tensor(np.concatenate([e.actions for e, _ in batch_eps])[keep])
        old_logp = th.as_tensor(np.concatenate([e.log_probs for e, _ in batch_eps])[keep])
        adv = th.as_tensor(
            np.concatenate([np.full(e.length, a, np.float32) for e, a in batch_eps])[keep]
        )
        teacher = th.as_tensor(
            np.concatenate([np.full(e.length, e.from_teacher) for e, _ in batch_eps])[keep]
        )
        weights = th.as_tensor(w)
        n = len(adv)
        loss_value = 0.0
        for _ in range(cfg.n_epochs):
            perm = th.as_tensor(self.rng.permutation(n))
            for start in range(0, n, cfg.batch_size):
                mb = perm[start : start + cfg.batch_size]
                dist = self.policy.get_distribution(obs[mb])
                logp = dist.log_prob(actions[mb])
                entropy = dist.entropy()
                per_step = self._step_loss(
                    logp, old_logp[mb], adv[mb], teacher[mb], dist, actions[mb]
                )
                wn = weights[mb] / weights[mb].sum()
                loss = (wn * per_step).sum()
                if entropy is not None:
                    loss = loss - cfg.ent_coef * (wn * entropy).sum()
                if not th.isfinite(loss):
                    raise NumericalError(f"non-finite loss at env step {self.num_timesteps}")
                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.policy.optimizer.step()
                loss_value = loss.item()
        if not all(th.isfinite(p).all() for p in self.policy.parameters()):
            raise NumericalError(
                f"non-finite parameters after the update at env step {self.num_timesteps}"
            )
        return loss_value

    # -- public API ---------------------------------------------------------------------

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "run",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> GRPO:
        """Train until ``total_timesteps`` env steps (teacher steps included) are spent."""
        total, cb = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        cb.on_training_start(locals(), globals())
        self._budget_end = total  # the last iteration stops at the budget
        while self.num_timesteps < total:
            cb.on_rollout_start()
            t0 = time.perf_counter()
            stats = self._iteration()
            self.num_timesteps += stats.env_steps
            self.teacher_steps += stats.teacher_steps
            self.last_stats = stats
            self._n_updates += 1
            for name, value in {**asdict(stats), **stats.extra}.items():
                if name != "extra":
                    self.logger.record(f"train/{name}", value)
            self.logger.record("time/iteration_s", time.perf_counter() - t0)
            if self._n_updates % log_interval == 0:
                self.logger.dump(self.num_timesteps)
            if not cb.on_step() or self.exhausted():
                break
        self._budget_end = None
        cb.on_training_end()
        return self

    def exhausted(self) -> bool:
        """Whether the method has nothing left to spend its budget on (BC on a used-up
        dataset); training ends then."""
        return False

    def save_checkpoint(self, path: Path) -> None:
        """Save with torch's RNG state, through a temporary file renamed into place, after
        moving the previous checkpoint to ``<name>.prev.zip``; a kill never truncates either."""
        self.torch_rng_state = th.get_rng_state()
        if path.exists():
            os.replace(path, path.with_suffix(".prev.zip"))
        atomic_write(path, self.save)

    def evaluate(self, n_episodes: int, deterministic: bool = False) -> dict[str, float]:
        """Success rate, mean return and mean length on the first ``n_episodes`` held-out
        start states."""
        seeds = self.task.eval_seeds(n_episodes)
        return evaluate(self._envs, seeds, self.policy, deterministic, self.seed or 0)
