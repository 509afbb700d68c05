"""4-bit bases on CPU: an evaluation in the middle of training must not change what the next
training step computes, and a weight bitsandbytes repacked for CPU inference still merges.

On CPUs with AVX512-BF16, bitsandbytes repacks 4-bit weights on their first eval-mode forward; the
loader turns that off (`keep_4bit_layers_exact`). On other CPUs these checks hold trivially.
"""

from __future__ import annotations

import bitsandbytes as bnb
import pytest
import torch

from tuneforge.config.schema import ModelConfig
from tuneforge.methods import METHODS
from tuneforge.models.load import load_model
from tuneforge.models.merge import dequantize_weight
from tuneforge.models.wrap import wrap

QLORA = METHODS.get("qlora").Config(r=4, lora_alpha=8, lora_dropout=0.0, bits=4)


def lora_grads(model, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_an_evaluation_leaves_the_next_training_step_unchanged(tiny_llama_dir):
    model = wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), QLORA), QLORA)
    with torch.no_grad():  # LoRA B starts at zero, which would hide a lost gradient below it
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    ids = torch.tensor([[5, 17, 300, 42, 9, 77, 1200, 3]])
    before = lora_grads(model, ids)
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    after = lora_grads(model, ids)
    assert before.keys() == after.keys() and before
    for name in before:
        assert before[name].abs().sum() > 0, f"{name} got no gradient"
        torch.testing.assert_close(after[name], before[name], msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.skipif(
    not bnb.functional.has_avx512bf16(), reason="bitsandbytes repacks only on AVX512-BF16 CPUs"
)
def test_a_weight_repacked_for_cpu_inference_still_dequantizes():
    torch.manual_seed(0)
    layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(
        torch.randn(64, 64), requires_grad=False, quant_type="nf4", compress_statistics=True
    )._quantize("cpu")
    exact = dequantize_weight(layer).float()
    layer.eval()
    with torch.no_grad():
        layer(torch.randn(2, 64))
    assert layer.weight.quant_state.packing_format_for_cpu, "bitsandbytes no longer repacks; drop this test"
    # the repack stores the block scales in bf16, so the weight comes back within bf16 rounding
    torch.testing.assert_close(dequantize_weight(layer).float(), exact, rtol=1e-2, atol=1e-2)
