"""DDP = one process: `tuneforge train` with scale.nproc_per_node=2 launches torchrun itself (gloo on
CPU), each rank trains on half of every global batch, and the loss curve, the gradient norms and
the trained adapter equal those of one process with the same global batch. Rank 0 tokenizes the
data, rank 1 reads the cache (one cache folder, no leftovers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.runs import make_config, write_alpaca, write_config

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path, model_dir, data, name, **train):
    cfg = make_config(tmp_path / name, model_dir, data, train=dict(max_steps=3, save_steps=3, **train))
    cfg["method"]["lora_dropout"] = 0.0  # dropout draws differ between one and two processes
    cfg["data"]["cache_dir"] = str(tmp_path / f"cache-{name}")
    return write_config(tmp_path, cfg, f"{name}.yaml")


def _history(run_dir: Path) -> list[dict]:
    state = json.loads((run_dir / "checkpoint-3" / "trainer_state.json").read_text())
    return [h for h in state["log_history"] if "loss" in h]


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path, tiny_llama_dir):
    rows = [
        {"instruction": f"Question number {i}?", "input": "", "output": "yes " * (1 + 3 * (i % 5))}
        for i in range(12)
    ]
    data = write_alpaca(tmp_path / "d.json", rows)
    one = _config(tmp_path, tiny_llama_dir, data, "one", per_device_train_batch_size=4)
    two = _config(tmp_path, tiny_llama_dir, data, "two", per_device_train_batch_size=2, nproc_per_node=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for cfg in (one, two):
        proc = subprocess.run(
            [sys.executable, "-m", "tuneforge", "train", str(cfg)], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch.distributed.run" in proc.stdout  # the second run launched torchrun itself

    worlds = [
        json.loads((tmp_path / n / "run" / "manifest.json").read_text())["world_size"] for n in ("one", "two")
    ]
    assert worlds == [1, 2]  # two ranks really trained together (not each alone as rank 0)
    h1, h2 = _history(tmp_path / "one" / "run"), _history(tmp_path / "two" / "run")
    assert len(h1) == len(h2) == 3
    for a, b in zip(h1, h2, strict=True):
        assert abs(a["loss"] - b["loss"]) < 2e-3, (a, b)
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-3 * a["grad_norm"], (a, b)
    w1, w2 = _adapter(tmp_path / "one" / "run"), _adapter(tmp_path / "two" / "run")
    assert w1.keys() == w2.keys()
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], atol=1e-5, rtol=1e-4, msg=k)
    caches = [p for p in (tmp_path / "cache-two" / "data").iterdir()]
    assert len(caches) == 1 and caches[0].is_dir() and ".tmp" not in caches[0].name


def test_fsdp2_over_cpu_processes_is_refused_before_any_rank_starts(tmp_path, tiny_llama_dir, capsys):
    from tests.helpers.runs import run_cli

    data = write_alpaca(tmp_path / "d.json", [{"instruction": "q", "input": "", "output": "a"}])
    cfg = _config(tmp_path, tiny_llama_dir, data, "fsdp", nproc_per_node=2)
    code, out, err = run_cli(capsys, "train", str(cfg), "scale.engine=fsdp2")
    assert code == 2 and "scale.engine=fsdp2 needs GPUs" in err and "torch.distributed.run" not in out
