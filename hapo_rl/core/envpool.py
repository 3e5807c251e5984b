"""A pool of env instances stepped together: in this process, or sharded over worker processes.

Env ``i`` of the pool runs one episode at a time from the seed it is reset with, so results do
not depend on how the envs are spread over workers. With ``n_workers > 0`` env ``i`` lives in
worker ``i % n_workers``; a step sends each worker the actions of its live envs and the workers
step in parallel while this process waits.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from hapo_rl.common.runtime import tune_process
from hapo_rl.core.tasks import is_success


class Transition(NamedTuple):
    obs: Any
    reward: float
    terminated: bool
    truncated: bool
    success: bool


def _to_env_action(space: gym.Space, action: Any) -> Any:
    if isinstance(space, gym.spaces.Box):
        return np.clip(action, space.low, space.high)
    if isinstance(space, gym.spaces.Discrete):
        return int(action)
    return action


class _Envs:
    """Env instances made on demand, keyed by their pool index."""

    def __init__(self, make: Callable[[], gym.Env]) -> None:
        self.make = make
        self.envs: dict[int, gym.Env] = {}

    def reset(self, jobs: Sequence[tuple[int, tuple[int, Sequence[Any]]]]) -> list[Any]:
        out = []
        for i, (seed, prefix) in jobs:
            if i not in self.envs:
                self.envs[i] = self.make()
            env = self.envs[i]
            obs = env.reset(seed=int(seed))[0]
            for action in prefix:
                obs, _, terminated, truncated, _ = env.step(
                    _to_env_action(env.action_space, action)
                )
                if terminated or truncated:
                    raise RuntimeError(f"the roll-in from start state {seed} ended the episode")
            out.append(obs)
        return out

    def step(self, jobs: Sequence[tuple[int, Any]]) -> list[Transition]:
        out = []
        for i, action in jobs:
            env = self.envs[i]
            obs, reward, terminated, truncated, info = env.step(
                _to_env_action(env.action_space, action)
            )
            out.append(
                Transition(
                    obs,
                    float(reward),
                    bool(terminated),
                    bool(truncated),
                    is_success(terminated, reward, info),
                )
            )
        return out

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def _worker(conn: Connection, make: Callable[[], gym.Env]) -> None:
    tune_process()
    envs = _Envs(make)
    while True:
        command, jobs = conn.recv()
        if command == "close":
            envs.close()
            conn.close()
            return
        try:
            conn.send(("ok", getattr(envs, command)(jobs)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


def _shutdown(conns: list[Connection], procs: list[mp.process.BaseProcess]) -> None:
    for conn in conns:
        try:
            conn.send(("close", []))
        except (BrokenPipeError, OSError):
            pass
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
    conns.clear()
    procs.clear()


class EnvPool:
    """Env instances addressed by index: ``reset`` and ``step`` any subset of them."""

    def __init__(self, make: Callable[[], gym.Env], n_workers: int = 0) -> None:
        self.n_workers = n_workers
        self._local = _Envs(make)
        self._conns: list[Connection] = []
        self._procs: list[mp.process.BaseProcess] = []
        if n_workers > 0:
            ctx = mp.get_context("spawn")
            for _ in range(n_workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, make), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        self._finalizer = weakref.finalize(self, _shutdown, self._conns, self._procs)

    def _run(self, command: str, jobs: Sequence[tuple[int, Any]]) -> list[Any]:
        if not self._conns:
            return getattr(self._local, command)(jobs)
        shards: list[list[int]] = [[] for _ in self._conns]
        for k, (i, _) in enumerate(jobs):
            shards[i % self.n_workers].append(k)
        for conn, ks in zip(self._conns, shards):
            conn.send((command, [jobs[k] for k in ks]))
        out: list[Any] = [None] * len(jobs)
        for conn, ks in zip(self._conns, shards):
            status, result = conn.recv()
            if status == "error":
                raise RuntimeError(f"an env worker failed:\n{result}")
            for k, r in zip(ks, result):
                out[k] = r
        return out

    def reset(
        self,
        seeds: Sequence[int],
        indices: Sequence[int] | None = None,
        prefixes: Sequence[Sequence[Any]] | None = None,
    ) -> list[Any]:
        """Reset envs ``indices`` (default ``0..len(seeds)-1``) from ``seeds``, then take the
        actions of ``prefixes[k]`` in env ``k`` (a roll-in), if given."""
        indices = range(len(seeds)) if indices is None else indices
        prefixes = prefixes if prefixes is not None else [()] * len(seeds)
        return self._run("reset", list(zip(indices, zip(seeds, prefixes))))

    def step(self, indices: Sequence[int], actions: Sequence[Any]) -> list[Transition]:
        return self._run("step", list(zip(indices, actions)))

    def close(self) -> None:
        self._finalizer()
        self._local.close()
