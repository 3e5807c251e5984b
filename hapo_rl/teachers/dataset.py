"""Demonstrations as data: a teacher's episodes written as a Minari dataset, and a teacher that
replays a dataset's episodes from the start states they were recorded from.

A dataset records the env as registered (``make_source_env``), not the policy's view of it, so
that a dataset made elsewhere with Minari's ``DataCollector`` serves as well as one made here.
Each episode keeps its reset seed (Minari's episode metadata ``seed``): the seeds are the
dataset's coverage. Replaying the recorded actions from the recorded seed reproduces the
episode in a deterministic env, and gives the policy's own observations for free. Needs the
``datasets`` extra (``minari``); nothing here touches the network.
"""

from __future__ import annotations

import os
import shutil
import string
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from hapo_rl.core.tasks import TaskError, make_source_env, policy_view
from hapo_rl.teachers.base import Teacher
from hapo_rl.teachers.episodes import teacher_episode

#: ``--teacher minari:LOCATION``: a dataset folder (or its ``data`` folder), or the id of a
#: dataset in Minari's local storage (``MINARI_DATASETS_PATH``).
PREFIX = "minari:"
#: Longest mission string a recorded MiniGrid observation may hold.
MISSION_LENGTH = 512


def require_minari() -> Any:
    """The ``minari`` module, or a ``TaskError`` saying which extra installs it."""
    try:
        import minari
    except ImportError:
        raise TaskError(
            "Minari datasets need the datasets extra: pip install 'hapo_rl[datasets]'"
        ) from None
    return minari


def recorded_space(space: gym.Space) -> gym.Space:
    """``space`` as a dataset stores it: MiniGrid's mission space (which Minari cannot
    serialise) becomes a ``Text`` space, in a Dict or alone."""
    if isinstance(space, gym.spaces.Dict):
        return gym.spaces.Dict({k: recorded_space(s) for k, s in space.spaces.items()})
    if type(space).__name__ == "MissionSpace":
        return gym.spaces.Text(MISSION_LENGTH, min_length=0, charset=string.printable)
    return space


def _same_space(a: gym.Space, b: gym.Space) -> bool:
    """Equal spaces, where any two ``Text`` spaces count as equal (their lengths and
    charsets vary between recorders)."""
    if isinstance(a, gym.spaces.Dict) and isinstance(b, gym.spaces.Dict):
        return a.keys() == b.keys() and all(_same_space(a[k], b[k]) for k in a.keys())
    if isinstance(a, gym.spaces.Text) and isinstance(b, gym.spaces.Text):
        return True
    return a == b


class _Tap(gym.Wrapper):
    """Keep the observations the wrapped env returns, for the recorder."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.seen = [obs]
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        out = self.env.step(action)
        self.seen.append(out[0])
        return out


def _stacked(observations: list[Any]) -> Any:
    if isinstance(observations[0], dict):
        return {k: _stacked([o[k] for o in observations]) for k in observations[0]}
    if isinstance(observations[0], str):
        return list(observations)
    return np.stack(observations)


@contextmanager
def _storage_root(root: Path) -> Iterator[None]:
    """Point Minari's local storage at ``root`` for the duration."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if before is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def record(
    env_id: str,
    teacher: Teacher,
    seeds: Iterable[int],
    out: Path,
    dataset_id: str,
    description: str = "",
) -> tuple[int, int, int]:
    """Run ``teacher`` from each start state in ``seeds`` and write the episodes, failed ones
    included, as the Minari dataset ``dataset_id`` in the folder ``out`` (which must not
    exist; it appears whole or not at all). Returns (episodes, steps, successes)."""
    minari = require_minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer

    tap = _Tap(make_source_env(env_id))
    env = policy_view(env_id, tap)
    buffers, steps, successes = [], 0, 0
    for i, seed in enumerate(seeds):
        episode = teacher_episode(env, teacher, int(seed))
        buffers.append(
            EpisodeBuffer(
                id=i,
                seed=int(seed),
                observations=_stacked(tap.seen),
                actions=list(episode.actions),
                rewards=[float(r) for r in episode.rewards],
                terminations=[False] * (episode.length - 1) + [episode.terminated],
                truncations=[False] * (episode.length - 1) + [not episode.terminated],
            )
        )
        steps += episode.length
        successes += episode.success
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)).absolute()
    try:
        with _storage_root(scratch), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Minari asks for an author, e-mail and permalink
            minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=tap.env,
                observation_space=recorded_space(tap.observation_space),
                algorithm_name=f"hapo_rl teacher ({type(teacher).__name__})",
                description=description or None,
                data_format="arrow",
                jpeg_encoding=False,  # lossless: the observations are the env's, exactly
            )
        os.replace(scratch / dataset_id, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        env.close()
    return len(buffers), steps, successes


def open_dataset(location: str) -> Any:
    """The ``MinariDataset`` at ``location``: a dataset folder, its ``data`` folder, or a
    dataset id in Minari's local storage. ``TaskError`` if there is none or it is unreadable."""
    minari = require_minari()
    path = Path(location).expanduser()
    data = path / "data" if (path / "data").is_dir() else path
    try:
        if data.is_dir():
            return minari.MinariDataset(str(data))
        if path.exists():
            raise TaskError(f"dataset '{location}' is a file, not a Minari dataset folder")
        return minari.load_dataset(location, download=False)
    except TaskError:
        raise
    except FileNotFoundError:
        raise TaskError(
            f"no Minari dataset at '{location}' (neither a folder nor a local dataset id)"
        ) from None
    except Exception as exc:  # a damaged metadata.json or episode file
        raise TaskError(
            f"dataset '{location}' is unreadable: {type(exc).__name__}: {exc}"
        ) from None


def _bare(env_id: str) -> str:
    return env_id.rpartition(":")[2]


class DatasetTeacher:
    """Replay a Minari dataset's recorded actions from the start state each episode was
    recorded from. Of several episodes from one start state the one of highest return is
    used. The dataset must come from ``env_id`` with its spaces, and its episodes must keep
    their reset seeds; its first episode is replayed once to check that the env still starts
    where the dataset did. A start state the dataset lacks has no teacher (``covers``)."""

    deterministic = True
    #: Its episodes are data: the budget is charged each start state's episode once.
    recorded = True

    def __init__(self, env_id: str, location: str) -> None:
        self.location = location
        dataset = open_dataset(location)
        where = f"dataset '{location}'"
        spec = dataset.spec.env_spec
        if spec is None:
            raise TaskError(f"{where} names no env (it was recorded without an env spec)")
        if _bare(spec.id) != _bare(env_id):
            raise TaskError(f"{where} was recorded on {spec.id}, not on {env_id}")
        source = make_source_env(env_id)
        try:
            self._check_spaces(where, dataset, source)
            self.plans = self._plans(where, dataset)
            self._check_start(where, dataset, source)
        finally:
            source.close()
        self._plan: np.ndarray | None = None
        self._seed = -1

    @staticmethod
    def _check_spaces(where: str, dataset: Any, source: gym.Env) -> None:
        if not _same_space(dataset.action_space, source.action_space):
            raise TaskError(
                f"{where} has the action space {dataset.action_space}; the env has "
                f"{source.action_space}"
            )
        if not _same_space(dataset.observation_space, recorded_space(source.observation_space)):
            raise TaskError(
                f"{where} has the observation space {dataset.observation_space}; the env has "
                f"{source.observation_space}"
            )

    @staticmethod
    def _plans(where: str, dataset: Any) -> dict[int, np.ndarray]:
        indices = list(dataset.episode_indices)
        metadata = list(dataset.storage.get_episode_metadata(indices))
        if not metadata:
            raise TaskError(f"{where} holds no episodes")
        best: dict[int, tuple[float, np.ndarray]] = {}
        for meta, episode in zip(metadata, dataset.iterate_episodes(indices)):
            seed = meta.get("seed")
            if seed is None:
                raise TaskError(
                    f"{where}: episode {episode.id} has no reset seed, so its start state "
                    "cannot be matched (record with env.reset(seed=...))"
                )
            ret = float(np.sum(episode.rewards))
            if int(seed) not in best or ret > best[int(seed)][0]:
                best[int(seed)] = (ret, np.asarray(episode.actions))
        return {seed: actions for seed, (_, actions) in best.items()}

    def _check_start(self, where: str, dataset: Any, source: gym.Env) -> None:
        first = dataset[int(dataset.episode_indices[0])]
        seed = next(iter(dataset.storage.get_episode_metadata([first.id])))["seed"]
        obs, _ = source.reset(seed=int(seed))
        recorded = _first(first.observations)
        if not _equal(obs, recorded):
            raise TaskError(
                f"{where}: the env reset with seed {seed} does not start where the dataset's "
                "episode did (another version of the env?)"
            )

    def covers(self, seed: int) -> bool:
        """Whether the dataset holds an episode from start state ``seed``."""
        return int(seed) in self.plans

    def reset(self, env: gym.Env, seed: int) -> None:
        if not self.covers(seed):
            raise ValueError(f"the dataset holds no episode from start state {seed}")
        self._plan, self._seed, self._t = self.plans[int(seed)], int(seed), 0

    def act(self, env: gym.Env, obs: Any) -> Any:
        assert self._plan is not None, "reset before act"
        if self._t >= len(self._plan):
            raise ValueError(
                f"the dataset's episode from start state {self._seed} ended after "
                f"{len(self._plan)} steps but the env went on (another version of the env?)"
            )
        self._t += 1
        return self._plan[self._t - 1]


def _first(observations: Any) -> Any:
    if isinstance(observations, dict):
        return {k: _first(v) for k, v in observations.items()}
    return observations[0]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64)))
