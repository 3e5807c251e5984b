"""Episode collection: many start states at once with batched policy inference.

Every env runs exactly one episode from the seed it is given; ``terminated`` and ``truncated``
are kept apart on each episode. Steps of envs whose episode has ended are not taken.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

from hapo_rl.common.timing import Stopwatch
from hapo_rl.core.envpool import EnvPool


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
    cut: bool = False  # stopped by the training budget, not by the env

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        return float(self.rewards.sum())


@th.no_grad()
def collect_episodes(
    pool: EnvPool,
    seeds: Sequence[int],
    policy: BasePolicy,
    deterministic: bool = False,
    watch: Stopwatch | None = None,
    prefixes: Sequence[Sequence[Any]] | None = None,
    max_steps: int | None = None,
    horizons: Sequence[int | None] | None = None,
) -> list[Episode]:
    """Run one episode per seed (env ``i`` of ``pool`` from ``seeds[i]``), stepping all live
    envs after one batched policy call. With ``prefixes``, env ``i`` first takes the actions
    ``prefixes[i]`` (a roll-in by someone else); the episode holds only the policy's steps.
    Once ``max_steps`` policy steps have been taken in all, the episodes still running are
    ``cut`` (a budget that ends mid-iteration); an episode with no step at all is left out.
    With ``horizons``, env ``i`` is truncated after ``horizons[i]`` steps (None: the task's own
    limit), as the env's own time limit would: a failure, not a cut."""
    watch = watch or Stopwatch()
    n = len(seeds)
    with watch.section("env"):
        obs_now = pool.reset(seeds, prefixes=prefixes)
    traj: list[dict[str, list]] = [{"obs": [], "act": [], "logp": [], "rew": []} for _ in range(n)]
    ended: list[tuple[bool, bool] | None] = [None] * n
    live = list(range(n))
    taken = 0
    while live and (max_steps is None or taken < max_steps):
        if max_steps is not None:
            live = live[: max_steps - taken]  # the budget's last steps go to the first envs
        with watch.section("inference"):
            obs_batch = th.as_tensor(np.stack([obs_now[i] for i in live]), device=policy.device)
            dist = policy.get_distribution(obs_batch)
            actions = dist.get_actions(deterministic=deterministic)
            log_probs = dist.log_prob(actions).cpu().numpy()
            actions_np = actions.cpu().numpy()
        with watch.section("env"):
            transitions = pool.step(live, list(actions_np))
        still = []
        for j, (i, tr) in enumerate(zip(live, transitions)):
            t = traj[i]
            t["obs"].append(obs_now[i])
            t["act"].append(actions_np[j])
            t["logp"].append(log_probs[j])
            t["rew"].append(tr.reward)
            short = horizons is not None and horizons[i] is not None
            if tr.terminated or tr.truncated or (short and len(t["rew"]) >= horizons[i]):
                ended[i] = (tr.terminated, tr.success)
            else:
                obs_now[i] = tr.obs
                still.append(i)
        taken += len(live)
        live = still
    episodes = []
    for i, seed in enumerate(seeds):
        t = traj[i]
        if not t["rew"]:
            continue
        terminated, success = ended[i] or (False, False)
        episodes.append(
            Episode(
                seed=int(seed),
                obs=np.stack(t["obs"]),
                actions=np.stack(t["act"]),
                log_probs=np.asarray(t["logp"], np.float32),
                rewards=np.asarray(t["rew"], np.float32),
                success=success,
                terminated=terminated,
                cut=ended[i] is None,
            )
        )
    return episodes


def success_rate(episodes: list[Episode]) -> float:
    """Success rate of an iteration's episodes; NaN if the budget cut any of them short, since
    the ones that finished before it ran out would be the quick, successful ones."""
    if not episodes or any(e.cut for e in episodes):
        return float("nan")
    return float(np.mean([e.success for e in episodes]))


@contextmanager
def evaluation_rng(seed: int) -> Iterator[None]:
    """Torch's generators seeded with ``seed`` inside, restored on leaving: evaluating samples
    the same way every time and leaves training's random stream where it was, so the evaluation
    cadence does not change what is learnt."""
    with th.random.fork_rng():
        th.manual_seed(int(seed))
        yield


def evaluate(
    pool: EnvPool,
    seeds: Sequence[int],
    policy: BasePolicy,
    deterministic: bool = False,
    rng_seed: int = 0,
) -> dict[str, float]:
    """Success rate, mean return and mean length of one episode from each of ``seeds``,
    actions sampled with ``evaluation_rng(rng_seed)`` (give the run's seed: runs must not
    share their evaluation noise)."""
    policy.set_training_mode(False)
    with evaluation_rng(rng_seed):
        episodes = collect_episodes(pool, seeds, policy, deterministic)
    return {
        "success_rate": float(np.mean([e.success for e in episodes])),
        "return_mean": float(np.mean([e.ret for e in episodes])),
        "length_mean": float(np.mean([e.length for e in episodes])),
    }
