"""`run_training` called from Python (a notebook) leaves the process as it found it: the environment
is the same afterwards, the allocator is never set, huge pages are not asked for, and PyTorch's
thread count is the notebook's again (train.num_threads holds during the call only); the
process-wide switches belong to the `tuneforge train` process start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.runs import make_config, write_alpaca

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, sys
import torch, transformers, trl, peft  # what they set on import is theirs
before, threads = dict(os.environ), torch.get_num_threads()
from tuneforge.speed import host_memory
calls = []
host_memory.keep_freed_memory = lambda: calls.append("keep") or True
host_memory.fix_mmap_threshold = lambda *a: calls.append("return") or True
from tuneforge.config.load import load_config
from tuneforge.train import run_training
run_training(load_config(None, data=json.loads(sys.argv[1])))
after = dict(os.environ)
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
report = {"changed": changed, "allocator": calls, "mode": host_memory.APPLIED["mode"]}
print(json.dumps({**report, "threads_kept": torch.get_num_threads() == threads}))
"""


def test_run_training_leaves_the_process_as_it_found_it(tmp_path, tiny_llama_dir):
    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    cfg["train"]["max_steps"] = 2
    cfg["train"]["dataloader_num_workers"] = 0
    cfg["train"]["num_threads"] = 1
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TUNEFORGE_CACHE": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(cfg)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"changed": [], "allocator": [], "mode": None, "threads_kept": True}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())  # it did train
    assert manifest["cpu_threads"] == 1
