"""One path from one process to many machines: `tuneforge train` runs as is under torchrun or
`accelerate launch`, and launches torchrun itself when `train.nproc_per_node` / `train.nnodes` ask
for more than one process and it is not already running under a launcher.

In a distributed run (`tuneforge.train.run_training`): rank 0 prepares the data (tokenized and
cached) while the others wait on a barrier, then they read the same cache; only rank 0 writes the
config, answers the comparison prompts and saves the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager


def under_launcher() -> bool:
    """True inside a process started by torchrun / accelerate launch (they set these)."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def needs_launch(train_cfg) -> bool:
    return (train_cfg.nproc_per_node > 1 or train_cfg.nnodes > 1) and not under_launcher()


def torchrun_command(train_cfg, argv: list[str]) -> list[str]:
    """`python -m torch.distributed.run ... -m tuneforge <argv>` for this node."""
    t = train_cfg
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={t.nproc_per_node}"]
    if t.nnodes == 1 and t.master_addr is None:
        cmd.append("--standalone")  # a free local port, no rendezvous settings needed
    else:
        cmd += [
            f"--nnodes={t.nnodes}",
            f"--node_rank={t.node_rank}",
            f"--master_addr={t.master_addr or '127.0.0.1'}",
            f"--master_port={t.master_port}",
        ]
    return [*cmd, "-m", "tuneforge", *argv]


def launch(train_cfg, argv: list[str]) -> int:
    """Run ``tuneforge <argv>`` under torchrun on this node and return its exit code."""
    cmd = torchrun_command(train_cfg, argv)
    print("launching: " + " ".join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", _threads(train_cfg))}
    return subprocess.call(cmd, env=env)


def _threads(train_cfg) -> str:
    # torchrun would set 1 thread per process; share the cores instead
    return str(max(1, (os.cpu_count() or 1) // train_cfg.nproc_per_node))


def distributed_state():
    """accelerate's process state when running as one of several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main(state) -> bool:
    return state is None or state.is_main_process


@contextmanager
def main_process_first(state):
    """Rank 0 runs the block first (e.g. tokenizes and caches), the others wait, then run it (and
    find the cache)."""
    if state is None:
        yield
        return
    with state.main_process_first():
        yield
