"""Training throughput and peak memory: raw env, stable-baselines3 PPO, GRPO and HAPO.

``hapo_before`` is HAPO with this project's speed and memory measures switched off (envs stepped
in the training process, the teacher planning every episode again, glibc's default malloc
thresholds): the same code before and after, measured in the same run.

Every measurement runs in its own child process (one after another, so they do not compete),
on the same task, with the same network (``hapo_rl.core.policies``), the same number of concurrent
envs (``groups_per_iter * group_size``) and minibatch size. Printed: env steps per second (teacher
steps included for HAPO), the split of GRPO's and HAPO's wall time into env stepping, policy
inference, teacher planning and learning, peak resident memory, and the ratios hapo/ppo and
hapo/raw-env measured in this run.

    python benchmarks/throughput.py [--envs ID ...] [--steps N] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

from hapo_rl.common.io import git_commit

GROUPS, GROUP_SIZE, BATCH, EPOCHS = 16, 8, 256, 2
DEFAULT_ENVS = ("MiniGrid-KeyCorridorS3R3-v0", "MiniGrid-DoorKey-8x8-v0")


def _raw(env_id: str, steps: int, workers: int) -> dict[str, Any]:
    """Random actions in the same env pool the group methods step."""
    from hapo_rl.core.envpool import EnvPool
    from hapo_rl.core.tasks import Task

    task = Task(env_id)
    n = GROUPS * GROUP_SIZE
    pool = EnvPool(task.make, workers)
    space = task.make().action_space
    space.seed(0)
    pool.reset(list(range(n)))
    done, seed = 0, n
    start = time.perf_counter()
    while done < steps:
        transitions = pool.step(range(n), [space.sample() for _ in range(n)])
        done += n
        ended = [i for i, t in enumerate(transitions) if t.terminated or t.truncated]
        if ended:
            pool.reset(list(range(seed, seed + len(ended))), ended)
            seed += len(ended)
    seconds = time.perf_counter() - start
    pool.close()
    return {"steps": done, "seconds": seconds}


def _ppo(env_id: str, steps: int) -> dict[str, Any]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from hapo_rl.core.policies import policy_kwargs_for
    from hapo_rl.core.tasks import Task

    task = Task(env_id)
    n_envs = GROUPS * GROUP_SIZE
    vec = DummyVecEnv([task.make] * n_envs)
    model = PPO(
        "MlpPolicy",
        vec,
        n_steps=max(8, 256 * 128 // n_envs),
        batch_size=BATCH,
        n_epochs=EPOCHS,
        policy_kwargs=policy_kwargs_for(env_id),
        seed=0,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(steps)
    return {"steps": model.num_timesteps, "seconds": time.perf_counter() - start}


def _group(env_id: str, steps: int, algo: str, workers: int) -> dict[str, Any]:
    from hapo_rl import GRPO, HAPO

    cls = GRPO if algo == "grpo" else HAPO
    baseline = algo == "hapo_before"
    model = cls(
        env_id,
        seed=0,
        env_workers=0 if baseline else workers,
        groups_per_iter=GROUPS,
        group_size=GROUP_SIZE,
        batch_size=BATCH,
        n_epochs=EPOCHS,
    )
    if baseline:
        model.teacher.deterministic = False  # plan every teacher episode again
    start = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - start
    model._envs.close()
    return {
        "steps": model.num_timesteps,
        "teacher_steps": model.teacher_steps,
        "seconds": seconds,
        "split_s": dict(model.watch.totals),
    }


def _child(method: str, env_id: str, steps: int, workers: int, queue: mp.Queue) -> None:
    from hapo_rl.common.runtime import tune_process

    tune_process(malloc=method != "hapo_before")
    if method == "raw_env":
        result = _raw(env_id, steps, workers)
    elif method == "ppo":
        result = _ppo(env_id, steps)
    else:
        result = _group(env_id, steps, method, workers)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["peak_worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    queue.put(result)


def measure(method: str, env_id: str, steps: int, workers: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(method, env_id, steps, workers, queue))
    proc.start()
    result = queue.get()
    proc.join()
    result["steps_per_s"] = result["steps"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    parser.add_argument("--steps", type=int, default=150_000, help="env steps per measurement")
    parser.add_argument(
        "--quick", action="store_true", help="KeyCorridorS3R3 only, 20k steps: under a minute"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--env-workers",
        type=int,
        default=0,
        help="env worker processes for raw env, grpo and hapo (PPO keeps SB3's DummyVecEnv)",
    )
    args = parser.parse_args()
    envs, steps = (DEFAULT_ENVS[:1], 20_000) if args.quick else (args.envs, args.steps)
    report: dict[str, Any] = {
        "env_workers": args.env_workers,
        "machine": f"{platform.node()} {platform.machine()}",
        "git_commit": git_commit(),
        "command": " ".join(["python", *sys.argv]),
        "steps": steps,
        "tasks": {},
    }
    for env_id in envs:
        results = {
            m: measure(m, env_id, steps, args.env_workers)
            for m in ("raw_env", "ppo", "grpo", "hapo_before", "hapo")
        }
        hapo = results["hapo"]["steps_per_s"]
        ratios = {
            "hapo_over_ppo": hapo / results["ppo"]["steps_per_s"],
            "hapo_over_raw_env": hapo / results["raw_env"]["steps_per_s"],
            "hapo_over_hapo_before": hapo / results["hapo_before"]["steps_per_s"],
        }
        report["tasks"][env_id] = {**results, **ratios}
        print(f"\n{env_id} ({steps} env steps each, {GROUPS * GROUP_SIZE} envs, minibatch {BATCH})")
        print(f"{'method':<11} {'steps/s':>9} {'peak MB':>8}  split of wall time")
        for method, r in results.items():
            split = r.get("split_s", {})
            total = r["seconds"]
            parts = " ".join(f"{k} {v / total:.0%}" for k, v in sorted(split.items()))
            uses_workers = args.env_workers and method in ("raw_env", "grpo", "hapo")
            workers_mb = f" (+{r['peak_worker_rss_mb']:.0f} per worker)" if uses_workers else ""
            print(
                f"{method:<11} {r['steps_per_s']:>9.0f} {r['peak_rss_mb']:>8.0f}"
                f"{workers_mb}  {parts}"
            )
        print(
            f"hapo/ppo {ratios['hapo_over_ppo']:.2f}   "
            f"hapo/raw-env {ratios['hapo_over_raw_env']:.2f}   "
            f"hapo/hapo_before {ratios['hapo_over_hapo_before']:.2f}"
        )
    if args.json:
        first = report["tasks"][envs[0]]
        report["hapo_over_ppo"] = first["hapo_over_ppo"]
        report["hapo_over_raw_env"] = first["hapo_over_raw_env"]
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
