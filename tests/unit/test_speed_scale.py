"""The scale and planning pieces that need no second process: the torchrun command line, the
DeepSpeed / FSDP2 configs handed to TrainingArguments, `tuneforge estimate`, the OOM message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tuneforge.config.load import load_config
from tuneforge.errors import ConfigError
from tuneforge.scale.engines import deepspeed_config, engine_training_arguments, fsdp2_config
from tuneforge.scale.launch import needs_launch, torchrun_command

BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}


def _scale(*overrides):
    return load_config(None, list(overrides), data=json.loads(json.dumps(BASE))).scale


def test_torchrun_command_single_and_multi_node(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    t = _scale("scale.nproc_per_node=4")
    assert needs_launch(t) and not needs_launch(_scale())
    cmd = torchrun_command(t, ["train", "c.yaml", "train.seed=1"])
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=4"] and "--standalone" in cmd
    assert cmd[-5:] == ["-m", "tuneforge", "train", "c.yaml", "train.seed=1"]
    multi = torchrun_command(
        _scale("scale.nproc_per_node=8", "scale.nnodes=2", "scale.node_rank=1", "scale.master_addr=10.0.0.1"),
        ["train", "c.yaml"],
    )
    assert {"--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29500"} <= set(multi)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert not needs_launch(t)  # already under torchrun / accelerate launch: run as is


@pytest.mark.parametrize("stage", [2, 3])
@pytest.mark.parametrize("offload", [False, True])
def test_deepspeed_configs(stage, offload):
    c = deepspeed_config(stage, offload)["zero_optimization"]
    assert c["stage"] == stage
    assert ("offload_optimizer" in c) == offload
    assert ("offload_param" in c) == (offload and stage == 3)
    if stage == 3:
        assert c["stage3_gather_16bit_weights_on_model_save"] is True
    full = deepspeed_config(stage, offload)
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert full[key] == "auto"  # transformers fills these in from TrainingArguments


def test_zero_without_deepspeed_is_a_one_line_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "deepspeed" else real(n, *a))
    with pytest.raises(ConfigError, match="pip install deepspeed"):
        engine_training_arguments(_scale("scale.engine=zero3"), False, tmp_path)
    with pytest.raises(ConfigError, match="scale.offload needs scale.engine"):
        engine_training_arguments(_scale("scale.offload=true"), False, tmp_path)


def test_fsdp2_reaches_training_arguments(tmp_path):
    from tuneforge.training.arguments import training_arguments

    cfg = load_config(
        None,
        ["scale.engine=fsdp2", "train.gradient_checkpointing=true"],
        data=json.loads(json.dumps(BASE)),
    )
    args = training_arguments(cfg, Path(tmp_path), has_eval=False)
    assert args.fsdp_config["version"] == 2 and args.fsdp_config["activation_checkpointing"] is True
    assert not args.gradient_checkpointing  # FSDP's own checkpointing instead of a second all-gather
    assert fsdp2_config(True, False)["cpu_offload"] is True


def test_estimate_command_and_its_orderings(tmp_path, tiny_llama_dir, capsys):
    from transformers import AutoConfig

    from tuneforge.speed.estimate import estimate

    data = write_alpaca(tmp_path / "d.json")
    cfg_path = write_config(tmp_path, make_config(tmp_path, tiny_llama_dir, data))
    code, out, err = run_cli(capsys, "estimate", str(cfg_path))
    assert code == 0, err
    assert "peak memory" in out and "tokens/s" in out

    mc = AutoConfig.from_pretrained(tiny_llama_dir)
    lengths = [50, 400, 120, 300, 90, 220, 60, 380]

    def est(*overrides):
        c = load_config(cfg_path, list(overrides))
        return estimate(c, mc, lengths, trained_share=0.5, flops=1e10)

    lora, full = est(), est("method={name: full}")
    assert full.peak_mb > lora.peak_mb and full.tokens_per_s < lora.tokens_per_s
    plain = est("speed.chunked_cross_entropy=false", "speed.padding_free=false")
    assert plain.parts_mb["loss"] > lora.parts_mb["loss"] and plain.tokens_per_s < lora.tokens_per_s
    assert est("train.gradient_checkpointing=true").parts_mb["activations"] < lora.parts_mb["activations"]


def test_out_of_memory_names_the_settings(tiny_llama_dir, tmp_path, monkeypatch):
    import torch

    from tuneforge.errors import TrainingError
    from tuneforge.train import run_training

    data = write_alpaca(tmp_path / "d.json")
    cfg = make_config(tmp_path, tiny_llama_dir, data)

    def oom(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(torch.Tensor, "backward", oom)
    with pytest.raises(TrainingError, match="step 1: out of memory.*per_device_train_batch_size"):
        run_training(load_config(None, data=cfg))
