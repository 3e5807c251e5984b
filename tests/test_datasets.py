"""Demonstrations as data: a teacher's episodes recorded as a Minari dataset, replayed as a
teacher (``--teacher minari:DIR``), refused with one line when they do not fit the task; and
``python -m hapo_rl.play``."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from hapo_rl import play
from hapo_rl import run as run_cli
from hapo_rl.methods import METHODS
from hapo_rl.teachers import record
from hapo_rl.teachers.dataset import DatasetTeacher, recorded_space
from tests.test_robustness import one_line

minari = pytest.importorskip("minari", reason="Minari needs Python 3.11")

ENV = "MiniGrid-DoorKey-5x5-v0"
RECORDED = 20  # episodes, from training start states 0..19


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets") / "doorkey5"
    assert record.main(["--env", ENV, "--episodes", str(RECORDED), "--out", str(out),
                        "--no-progress"]) == 0  # fmt: skip
    return out


def _model(algo, teacher, **settings):
    method = METHODS[algo]
    given = {"n_train_seeds": RECORDED, **settings}
    return method.cls(ENV, teacher=teacher, seed=0, **method.settings(algo, given))


def test_the_dataset_keeps_seeds_actions_and_the_envs_own_observations(dataset):
    data = minari.MinariDataset(str(dataset / "data"))
    seeds = [m["seed"] for m in data.storage.get_episode_metadata(range(RECORDED))]
    assert sorted(seeds) == list(range(RECORDED))
    env = gym.make(ENV)
    episode = data[0]
    obs, _ = env.reset(seed=seeds[0])
    assert np.array_equal(episode.observations["image"][0], obs["image"])  # lossless
    for action in episode.actions:
        obs, reward, terminated, _, _ = env.step(int(action))
    assert terminated and reward > 0  # the recorded actions replay to the teacher's success
    assert data.spec.env_spec.id == ENV


def test_hapo_from_the_dataset_is_hapo_from_the_live_teacher(dataset):
    """On the dataset's start states the replayed episodes are the teacher's own, and each
    is charged once, as HAPO keeps a live deterministic teacher's: the runs are the same."""
    runs = []
    for teacher in (None, f"minari:{dataset}"):
        model = _model("hapo", teacher)
        model.learn(1500)
        runs.append((model.teacher_steps, model.kept_actions.keys(), model.evaluate(30)))
    assert runs[0][0] > 0 and runs[0][1]  # the teacher was used
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]


def test_bc_from_the_dataset_learns_and_stops_when_it_is_used_up(dataset):
    steps = minari.MinariDataset(str(dataset / "data")).total_steps
    settings = {"demos_per_iter": RECORDED, "n_epochs": 50}
    from_data = _model("bc", f"minari:{dataset}", **settings)
    from_data.learn(10 * steps)
    assert from_data.num_timesteps == from_data.teacher_steps == steps  # each charged once
    live = _model("bc", None, **settings)
    live.learn(steps)
    untrained = _model("bc", None).evaluate(30)["success_rate"]
    learnt = from_data.evaluate(30)["success_rate"]
    assert learnt == live.evaluate(30)["success_rate"] and learnt >= untrained + 0.25


def test_demo_noise_with_a_recorded_teacher_is_refused(dataset):
    with pytest.raises(ValueError, match="demo_noise needs a teacher that acts"):
        _model("bc", f"minari:{dataset}", demo_noise=0.1)
    with pytest.raises(ValueError, match="warm_start_noise needs a teacher that acts"):
        _model("bc-grpo", f"minari:{dataset}", warm_start_noise=0.1)


def test_start_states_the_dataset_lacks_get_no_teacher(tmp_path):
    out = tmp_path / "half"
    assert record.main(["--env", ENV, "--episodes", "10", "--out", str(out), "--no-progress"]) == 0
    model = _model("hapo", f"minari:{out}")
    assert [model._has_teacher(s) for s in (0, 9, 10, 19)] == [True, True, False, False]
    model.learn(3000)
    assert model.kept_actions and set(model.kept_actions) <= set(range(10))


def _write(tmp_path, name, seeds, obs_seeds=None, action_space=None, env_id=ENV):
    """A dataset of the teacher's episodes from ``seeds`` whose observations come from
    ``obs_seeds`` (default: the same), with ``action_space`` claimed for it."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from hapo_rl.teachers.registry import load_teacher

    env, teacher = gym.make(env_id), load_teacher(env_id)
    buffers = []
    for i, (seed, obs_seed) in enumerate(zip(seeds, obs_seeds or seeds)):
        obs, _ = env.reset(seed=obs_seed)
        teacher.reset(env, obs_seed)
        seen, actions = [obs], []
        while True:
            actions.append(teacher.act(env, obs))
            obs, _, terminated, truncated, _ = env.step(actions[-1])
            seen.append(obs)
            if terminated or truncated:
                break
        buffers.append(EpisodeBuffer(
            id=i, seed=seed, actions=actions, rewards=[0.0] * len(actions),
            terminations=[False] * (len(actions) - 1) + [terminated],
            truncations=[False] * (len(actions) - 1) + [truncated],
            observations={k: [o[k] for o in seen] for k in seen[0]},
        ))  # fmt: skip
    root = tmp_path / "store"
    import os

    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            minari.create_dataset_from_buffers(
                f"test/{name}-v0", buffers, env=env,
                observation_space=recorded_space(env.observation_space),
                action_space=action_space, data_format="arrow", jpeg_encoding=False,
            )  # fmt: skip
    finally:
        del os.environ["MINARI_DATASETS_PATH"]
    return root / "test" / f"{name}-v0"


@pytest.mark.parametrize(
    "case, says",
    [
        ("other-env", "was recorded on MiniGrid-DoorKey-6x6-v0, not on MiniGrid-DoorKey-5x5-v0"),
        ("other-actions", "has the action space Discrete(3); the env has Discrete(7)"),
        ("no-seeds", "has no reset seed"),
        ("moved-start", "does not start where the dataset's episode did"),
        ("missing", "no Minari dataset at"),
        ("damaged", "is unreadable"),
        ("no-training-state", "no training start state"),
    ],
)
def test_a_dataset_that_does_not_fit_is_one_line_and_no_run_folder(tmp_path, capsys, case, says):
    if case == "other-env":
        where = _write(tmp_path, case, [0, 1], env_id="MiniGrid-DoorKey-6x6-v0")
    elif case == "other-actions":
        where = _write(tmp_path, case, [0, 1], action_space=gym.spaces.Discrete(3))
    elif case == "no-seeds":
        where = _write(tmp_path, case, [None, None], obs_seeds=[0, 1])
    elif case == "moved-start":
        where = _write(tmp_path, case, [0, 1], obs_seeds=[5, 6])
    elif case == "missing":
        where = tmp_path / "nowhere"
    elif case == "damaged":
        where = _write(tmp_path, case, [0, 1])
        (where / "data" / "metadata.json").write_text("{not json")
    else:
        where = tmp_path / case
        assert record.main(["--env", ENV, "--episodes", "3", "--first-seed", "1000",
                            "--out", str(where), "--no-progress"]) == 0  # fmt: skip
        capsys.readouterr()
    run_dir = tmp_path / "run"
    argv = ["--env", ENV, "--teacher", f"minari:{where}", "--run-dir", str(run_dir),
            "--total-steps", "2000", "--no-progress"]  # fmt: skip
    assert run_cli.main(argv) == 2
    assert says in one_line(capsys) and not run_dir.exists()


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--episodes", "0"], "--episodes must be positive"),
        (["--env", "Nope-v0"], "unknown env"),
        (["--epsilon", "2"], "epsilon must be in [0, 1]"),
        (["--teacher", "nomodule:act"], "importing nomodule failed"),
    ],
)
def test_record_refuses_bad_input_with_one_line(tmp_path, capsys, argv, says):
    out = tmp_path / "out"
    full = ["--env", ENV, "--out", str(out), "--no-progress", *argv]
    assert record.main(full) == 2
    assert says in one_line(capsys) and not out.exists()


def test_record_never_overwrites(dataset, capsys):
    before = sorted(p.name for p in (dataset / "data").iterdir())
    assert record.main(["--env", ENV, "--out", str(dataset), "--no-progress"]) == 2
    assert "already exists" in one_line(capsys)
    assert sorted(p.name for p in (dataset / "data").iterdir()) == before


# -- watching ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    run_dir = tmp_path_factory.mktemp("runs") / "bc"
    argv = ["--algo", "bc", "--env", ENV, "--teacher", f"minari:{dataset}", "--n-epochs", "50",
            "--n-train-seeds", str(RECORDED), "--demos-per-iter", str(RECORDED),
            "--total-steps", "5000", "--eval-episodes", "5", "--run-dir", str(run_dir),
            "--no-progress"]  # fmt: skip
    assert run_cli.main(argv) == 0
    return run_dir


def test_a_dataset_run_ends_when_the_dataset_is_used_up(trained, dataset):
    summary = json.loads((trained / "summary.json").read_text())
    steps = minari.MinariDataset(str(dataset / "data")).total_steps
    assert summary["total_steps"] == summary["teacher_steps"] == steps


def test_play_writes_a_gif_of_held_out_episodes(trained, tmp_path, capsys):
    out = tmp_path / "agent.gif"
    assert play.main([str(trained), "--episodes", "2", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 held-out episodes of bc on MiniGrid-DoorKey-5x5-v0 (sampled)" in said
    gif = Image.open(out)
    first = np.asarray(gif.convert("RGB"))
    env = gym.make(ENV, render_mode="rgb_array")
    env.reset(seed=1_000_000)
    plain = env.render()
    assert gif.n_frames > 2 and first.shape == plain.shape
    assert not np.array_equal(first[:12], plain[:12]) and np.array_equal(first[40:], plain[40:])


@pytest.mark.parametrize("case", ["no-folder", "no-checkpoint", "bad-suffix"])
def test_play_refuses_what_it_cannot_play_with_one_line(trained, tmp_path, capsys, case):
    run_dir = {"no-folder": tmp_path / "none", "bad-suffix": trained}.get(case, tmp_path)
    if case == "no-checkpoint":
        (tmp_path / "config.json").write_text((trained / "config.json").read_text())
    extra = ["--out", str(tmp_path / "a.mp4")] if case == "bad-suffix" else []
    assert play.main([str(run_dir), *extra]) == 2
    one_line(capsys)
    assert not (tmp_path / "a.mp4").exists()


def test_play_says_so_when_the_env_cannot_render(tmp_path, capsys):
    run_dir = tmp_path / "corridor"
    argv = ["--algo", "grpo", "--env", "tests.tiny:Corridor-v0", "--group-size", "4",
            "--groups-per-iter", "4", "--n-train-seeds", "16", "--total-steps", "500",
            "--eval-episodes", "2", "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
    assert run_cli.main(argv) == 0
    capsys.readouterr()
    assert play.main([str(run_dir)]) == 1
    assert "rendering tests.tiny:Corridor-v0 failed" in one_line(capsys)
    assert not (run_dir / "play.gif").exists()


def test_record_takes_a_relative_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert record.main(["--env", ENV, "--episodes", "2", "--out", "d/x", "--no-progress"]) == 0
    assert DatasetTeacher(ENV, "d/x").covers(1)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["x"]  # no scratch folder left
