"""The MiniGrid task definitions: ids, aliases, pools and the policy's observation."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.constants import DIR_TO_VEC, OBJECT_TO_IDX
from minigrid.core.world_object import Key

from hapo_rl.core.tasks import HELD_OUT_OFFSET, Task, resolve_env_id
from hapo_rl.envs.minigrid import FAMILIES, TASK_IDS, make


def test_every_task_id_is_registered_and_aliases_resolve():
    for env_id in TASK_IDS:
        gym.spec(env_id)
    for alias, (default, ids) in FAMILIES.items():
        assert resolve_env_id(alias) == default and default in ids
    assert resolve_env_id("MiniGrid-KeyCorridor") == "MiniGrid-KeyCorridorS3R3-v0"


def test_training_and_held_out_pools_are_disjoint():
    task = Task("MiniGrid-DoorKey-5x5-v0", n_train=500)
    assert not set(task.train_seeds) & set(task.eval_seeds(1000))
    assert task.eval_seeds(3).tolist() == [
        HELD_OUT_OFFSET,
        HELD_OUT_OFFSET + 1,
        HELD_OUT_OFFSET + 2,
    ]


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.parametrize("view", ["egocentric", "allocentric", "partial"])
def test_wrapped_env_passes_gymnasium_checks(view):
    check_env(make("MiniGrid-DoorKey-5x5-v0", view), skip_render_check=True)


def test_egocentric_grid_puts_the_agent_in_the_centre_facing_up():
    env = make("MiniGrid-KeyCorridorS3R3-v0")
    r = env.radius
    rng = np.random.default_rng(0)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        for _ in range(30):
            base = env.unwrapped
            fx, fy = base.agent_pos + DIR_TO_VEC[base.agent_dir]
            front = base.grid.get(fx, fy)
            assert obs[0, r, r] == OBJECT_TO_IDX["agent"]
            assert obs[0, r, r - 1] == (front.encode()[0] if front else OBJECT_TO_IDX["empty"])
            obs, *_ = env.step(int(rng.integers(3)))


def test_carried_object_is_observed():
    env = make("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=0)
    assert env.unwrapped.carrying is None
    env.unwrapped.carrying = Key("yellow")
    obs = env.observation(None)
    assert (obs[3] == OBJECT_TO_IDX["key"]).all() and (obs[4] > 0).all()


def test_same_seed_same_start_state():
    a, b = make("MiniGrid-ObstructedMaze-2Dlh-v0"), make("MiniGrid-ObstructedMaze-2Dlh-v0")
    assert np.array_equal(a.reset(seed=7)[0], b.reset(seed=7)[0])
    assert not np.array_equal(a.reset(seed=7)[0], a.reset(seed=8)[0])


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-8x8-v0", "MiniGrid-MultiRoom-N4-S5-v0"])
def test_the_encoder_sums_the_channels_embeddings(env_id):
    import torch as th

    from hapo_rl.core.policies import GridEncoder

    env = make(env_id)
    obs = th.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(4)]))
    encoder = GridEncoder(env.observation_space)
    lookup = encoder.embed(obs.long() + encoder.offsets).sum(dim=1).permute(0, 3, 1, 2)
    expected = encoder.linear(encoder.cnn(lookup))
    assert th.allclose(encoder(obs), expected, atol=1e-6)
    (ours,) = th.autograd.grad(encoder(obs).sum(), encoder.embed.weight)
    (theirs,) = th.autograd.grad(expected.sum(), encoder.embed.weight)
    assert ours.abs().sum() > 0 and th.allclose(ours, theirs, atol=1e-5)
    # grids over 25 cells are pooled once after the first convolution
    pooled = any(isinstance(m, th.nn.MaxPool2d) for m in encoder.cnn)
    assert pooled == (env.observation_space.shape[1] > 25)
