"""One path from one process to many machines: `tuneforge train` runs as is under torchrun or
`accelerate launch`, and launches torchrun itself when `scale.nproc_per_node` / `scale.nnodes` ask
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


def needs_launch(scale_cfg) -> bool:
    return (scale_cfg.nproc_per_node > 1 or scale_cfg.nnodes > 1) and not under_launcher()


def torchrun_command(scale_cfg, argv: list[str]) -> list[str]:
    """`python -m torch.distributed.run ... -m tuneforge <argv>` for this node."""
    t = scale_cfg
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


def launch(scale_cfg, argv: list[str]) -> int:
    """Run ``tuneforge <argv>`` under torchrun on this node and return its exit code."""
    cmd = torchrun_command(scale_cfg, argv)
    print("launching: " + " ".join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", _threads(scale_cfg))}
    return subprocess.call(cmd, env=env)


def _threads(scale_cfg) -> str:
    # torchrun would set 1 thread per process; share the cores other processes leave free instead
    # (each child's train.num_threads, where set, still wins: tuneforge.threads)
    from tuneforge.threads import free_cores

    return str(max(1, free_cores()[0] // scale_cfg.nproc_per_node))


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
