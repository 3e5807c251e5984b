"""The Ray backend on a real cluster: a head and a worker node started with ``ray start``, a
sweep with ``--backend ray --address``, and the worker node lost while a run executes on it.

Each node runs under ``ray start --block`` in a process of its own, so that stopping that
process stops that node alone (as ``ray stop`` on its machine would) and nothing is left
behind whatever happens. The worker node is lost the hard way: its raylet is killed. Token
authentication is off (``RAY_AUTH_MODE=disabled``) for these local nodes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hapo_rl.experiment import main

RAY = str(Path(sys.executable).parent / "ray")
ENV = {
    **os.environ,
    "PYTHONPATH": os.getcwd(),
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}
SWEEP = """
[experiment]
tasks = ["tests.tiny:Corridor-v0"]
seeds = [0, 1, 2]
total_steps = 240_000
eval_every = 12_000
eval_episodes = 5

[methods.hapo]
algo = "hapo"
teacher = "tests.tiny:RightTeacher"
group_size = 4
groups_per_iter = 4
n_train_seeds = 16
"""
NODE = ["--num-cpus", "1", "--object-store-memory", "100000000", "--block"]
LOST = ["--resources", '{"lost_node": 1}']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nodes(address: str) -> int:
    done = subprocess.run(
        [RAY, "status", "--address", address], env=ENV, capture_output=True, text=True
    )
    active = done.stdout.split("Active:")[-1].split("Pending:")[0]
    return active.count("node_") if done.returncode == 0 else 0


def _wait(what, seconds: float, why: str) -> None:
    deadline = time.time() + seconds
    while not what():
        if time.time() > deadline:
            pytest.fail(f"timed out: {why}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    """Stop one ``ray start --block`` node: SIGTERM makes it stop its own processes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def cluster(tmp_path):
    """A head and a worker node on local ports; yields (address, worker process)."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    log = open(tmp_path / "ray.log", "w")
    head = subprocess.Popen(
        [RAY, "start", "--head", "--port", str(port), "--include-dashboard=false",
         "--disable-usage-stats", *NODE],
        env=ENV, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    nodes = [head]
    try:
        _wait(lambda: _nodes(address) == 1, 120, "the head node did not start")
        worker = subprocess.Popen(
            [RAY, "start", "--address", address, *NODE, *LOST],
            env=ENV, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        nodes.append(worker)
        _wait(lambda: _nodes(address) == 2, 120, "the worker node did not join")
        yield address, worker
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        log.close()


def _checkpointed_twice(run_dir: Path) -> bool:
    """Whether a checkpoint after step 0 is on disk: saving one moves the one before it to
    ``model.prev.zip`` first. (A row in curves.csv is written just before its checkpoint.)"""
    return (run_dir / "model.prev.zip").is_file() and (run_dir / "model.zip").is_file()


def _raylet(resource: str) -> int:
    """The pid of the raylet of the node that has the custom ``resource``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"/raylet") and any(resource.encode() in a for a in argv):
            return int(pid)
    pytest.fail(f"no raylet has the resource {resource}")


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the raylet's workers and the runs they started)."""
    parents = {}
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{child}/stat").read_text()
        except OSError:
            continue
        parents[int(child)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {pid}, True
    while grew:
        below = {c for c, p in parents.items() if p in tree} - tree
        tree |= below
        grew = bool(below)
    return sorted(tree)


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    return {
        "curves": pd.read_parquet(out / "curves.parquet").drop(columns=["wall_time_s"]),
        "runs": pd.read_csv(out / "runs.csv").drop(columns=["wall_time_s"], errors="ignore"),
    }


def test_a_sweep_on_a_cluster_survives_losing_a_node(cluster, tmp_path):
    address, worker = cluster
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP)
    out = tmp_path / "cluster"
    cmd = [sys.executable, "-m", "hapo_rl.experiment", str(path), "--out", str(out),
           "--backend", "ray", "--address", address]  # fmt: skip
    runner = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = [out / "hapo" / "Corridor-v0" / f"s{seed}" for seed in range(3)]

    def both_nodes_mid_run() -> bool:  # one CPU a node: two runs under way, one on each
        if runner.poll() is not None:
            pytest.fail(f"the sweep ended early: {runner.communicate()}")
        started = [r for r in runs if _checkpointed_twice(r)]
        return len(started) == 2 and not any((r / "summary.json").is_file() for r in started)

    _wait(both_nodes_mid_run, 300, "two runs never ran at once")
    for pid in _tree(_raylet("lost_node")):  # the worker node is lost, as in a crash
        os.kill(pid, signal.SIGKILL)
    _stop(worker)
    stdout, stderr = runner.communicate(timeout=600)
    assert runner.returncode == 0, stderr.decode()[-2000:]
    assert "3/3 runs finished, 0 failed" in stdout.decode()
    resumed = [json.loads((r / "config.json").read_text()).get("resumed", []) for r in runs]
    assert sorted(len(r) for r in resumed) == [0, 0, 1]  # the lost run resumed, once
    assert max(resumed, key=len)[0]["step"] > 0  # from a checkpoint after its start
    local = tmp_path / "local"
    assert main([str(path), "--out", str(local), "--workers", "2"]) == 0
    for name, table in _tables(local).items():
        pd.testing.assert_frame_equal(table, _tables(out)[name], obj=name)
