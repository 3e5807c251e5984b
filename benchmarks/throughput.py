"""Training throughput and peak memory: raw env, stable-baselines3 PPO, GRPO and HAPO.

Every measurement runs in its own child process (one after another, so they do not compete),
on the same task, with the same network (``hapo_rl.policies``), the same number of concurrent
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
import time
from pathlib import Path
from typing import Any

GROUPS, GROUP_SIZE, BATCH, EPOCHS = 16, 8, 256, 2
DEFAULT_ENVS = ("MiniGrid-KeyCorridorS3R3-v0", "MiniGrid-DoorKey-8x8-v0")


def _raw(env_id: str, steps: int) -> dict[str, Any]:
    """Random actions in the same in-process env pool the group methods step."""
    from hapo_rl.tasks import Task

    task = Task(env_id)
    envs = [task.make() for _ in range(GROUPS * GROUP_SIZE)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
        env.action_space.seed(i)
    done, seed = 0, len(envs)
    start = time.perf_counter()
    while done < steps:
        for env in envs:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done += 1
            if terminated or truncated:
                env.reset(seed=seed)
                seed += 1
    return {"steps": done, "seconds": time.perf_counter() - start}


def _ppo(env_id: str, steps: int) -> dict[str, Any]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from hapo_rl.policies import policy_kwargs_for
    from hapo_rl.tasks import Task

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


def _group(env_id: str, steps: int, algo: str) -> dict[str, Any]:
    from hapo_rl import GRPO, HAPO

    cls = HAPO if algo == "hapo" else GRPO
    model = cls(
        env_id,
        seed=0,
        groups_per_iter=GROUPS,
        group_size=GROUP_SIZE,
        batch_size=BATCH,
        n_epochs=EPOCHS,
    )
    start = time.perf_counter()
    model.learn(steps)
    seconds = time.perf_counter() - start
    return {
        "steps": model.num_timesteps,
        "teacher_steps": model.teacher_steps,
        "seconds": seconds,
        "split_s": dict(model.watch.totals),
    }


def _child(method: str, env_id: str, steps: int, queue: mp.Queue) -> None:
    from hapo_rl.runtime import tune_process

    tune_process()
    result = (
        _raw(env_id, steps)
        if method == "raw_env"
        else _ppo(env_id, steps)
        if method == "ppo"
        else _group(env_id, steps, method)
    )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(method: str, env_id: str, steps: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(method, env_id, steps, queue))
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
    args = parser.parse_args()
    envs, steps = (DEFAULT_ENVS[:1], 20_000) if args.quick else (args.envs, args.steps)
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}",
        "steps": steps,
        "tasks": {},
    }
    for env_id in envs:
        results = {m: measure(m, env_id, steps) for m in ("raw_env", "ppo", "grpo", "hapo")}
        hapo = results["hapo"]["steps_per_s"]
        ratios = {
            "hapo_over_ppo": hapo / results["ppo"]["steps_per_s"],
            "hapo_over_raw_env": hapo / results["raw_env"]["steps_per_s"],
        }
        report["tasks"][env_id] = {**results, **ratios}
        print(f"\n{env_id} ({steps} env steps each, {GROUPS * GROUP_SIZE} envs, minibatch {BATCH})")
        print(f"{'method':<8} {'steps/s':>9} {'peak MB':>8}  split of wall time")
        for method, r in results.items():
            split = r.get("split_s", {})
            total = r["seconds"]
            parts = " ".join(f"{k} {v / total:.0%}" for k, v in sorted(split.items()))
            print(f"{method:<8} {r['steps_per_s']:>9.0f} {r['peak_rss_mb']:>8.0f}  {parts}")
        print(
            f"hapo/ppo {ratios['hapo_over_ppo']:.2f}   "
            f"hapo/raw-env {ratios['hapo_over_raw_env']:.2f}"
        )
    if args.json:
        first = report["tasks"][envs[0]]
        report["hapo_over_ppo"] = first["hapo_over_ppo"]
        report["hapo_over_raw_env"] = first["hapo_over_raw_env"]
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
