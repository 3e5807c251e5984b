"""Can a memoryless policy learn what the teacher shows? Behaviour cloning per observation.

For each observation choice (the default egocentric full grid, the full grid in its own frame,
MiniGrid's partial 7x7 view) and each number of demonstrations: collect that many successful
scripted-teacher episodes on training start states, clone them into the project's policy
network, and measure held-out success with sampled actions. Writes a CSV and a JSON sidecar.
``--pool-above N`` sets the grid size above which the encoder pools after its first convolution
(default 25; 0 pools every grid), to see what pooling costs in imitation.

    python benchmarks/imitation_gap.py --env MiniGrid-KeyCorridorS3R3-v0 --demos 200 500
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from tqdm import tqdm

from hapo_rl.algos.bc import clone
from hapo_rl.common.io import git_commit, write_csv, write_json
from hapo_rl.common.runtime import tune_process
from hapo_rl.core.envpool import EnvPool
from hapo_rl.core.policies import policy_kwargs_for
from hapo_rl.core.rollout import collect_episodes
from hapo_rl.core.tasks import HELD_OUT_OFFSET
from hapo_rl.envs.minigrid import VIEWS, make
from hapo_rl.teachers.episodes import teacher_episode
from hapo_rl.teachers.minigrid import MiniGridTeacher


def measure(
    env_id: str,
    view: str,
    n_demos: int,
    epochs: int,
    eval_episodes: int,
    seed: int,
    pool_above: int = 25,
) -> dict:
    th.manual_seed(seed)
    env = make(env_id, view)
    teacher = MiniGridTeacher()
    demos = []
    seed_iter = iter(range(10 * n_demos))
    while len(demos) < n_demos:
        episode = teacher_episode(env, teacher, next(seed_iter))
        if episode.success:
            demos.append(episode)
    policy = ActorCriticPolicy(
        env.observation_space, env.action_space, lambda _: 3e-4,
        **policy_kwargs_for(env_id), features_extractor_kwargs={"pool_above": pool_above},
    )  # fmt: skip
    t0 = time.perf_counter()
    loss = clone(policy, demos, epochs, 256, np.random.default_rng(seed))
    fit_s = time.perf_counter() - t0
    policy.set_training_mode(False)
    pool = EnvPool(lambda: make(env_id, view))
    eps = collect_episodes(pool, HELD_OUT_OFFSET + np.arange(eval_episodes), policy)
    return {
        "env_id": env_id,
        "view": view,
        "pool_above": pool_above,
        "demos": n_demos,
        "demo_steps": sum(d.length for d in demos),
        "epochs": epochs,
        "train_nll": loss,
        "heldout_success": float(np.mean([e.success for e in eps])),
        "heldout_length": float(np.mean([e.length for e in eps])),
        "fit_s": fit_s,
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-KeyCorridorS3R3-v0")
    parser.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    parser.add_argument("--demos", nargs="+", type=int, default=[200, 500])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument("--pool-above", type=int, default=25, help="pool grids wider than this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/imitation_gap.csv"))
    args = parser.parse_args()
    tune_process()
    grid = [(v, n) for v in args.views for n in args.demos]
    rows = [
        measure(args.env, v, n, args.epochs, args.eval_episodes, args.seed, args.pool_above)
        for v, n in tqdm(grid, desc="imitation gap")
    ]
    frame = pd.DataFrame(rows)
    write_csv(args.out, frame)
    commit = git_commit()
    write_json(
        args.out.with_suffix(".json"),
        {
            "command": " ".join(["python", *sys.argv]),
            "git_commit": commit,
            "machine": f"{platform.node()} {platform.machine()}",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
    )
    print(
        frame[["view", "demos", "train_nll", "heldout_success", "heldout_length"]].to_string(
            index=False
        )
    )


if __name__ == "__main__":
    main()
