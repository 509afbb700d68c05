"""`bitfit`: only the bias terms train (Ben Zaken et al. 2022, https://arxiv.org/abs/2106.10199).

Built on PEFT's BEFT tuner: each linear layer that has a bias gets a trainable vector ``delta``
(zero at the start) added to its output, which is exactly training that bias as ``b + delta``.
So the run saves a PEFT adapter (a few KB), the adapter can be disabled, and merging adds
``delta`` into ``b``. Covered: the biases of linear layers (in Qwen2, the q/k/v projections);
LayerNorm biases are not (decoder LLMs use RMSNorm, which has none). Models whose linear layers
have no bias (Llama, SmolLM2, Mistral) are refused with a suggestion instead of training nothing.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from tuneforge.errors import ConfigError
from tuneforge.methods._base import MethodConfig, no_load_kwargs

DESCRIPTION = (
    "BitFit: only the bias terms of the linear layers train (needs a model with biases, e.g. Qwen2)."
)
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(MethodConfig):
    name: Literal["bitfit"] = "bitfit"


load_kwargs = no_load_kwargs


def _biased_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers with a bias, the output head excluded."""
    head = model.get_output_embeddings()
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and m.bias is not None and m is not head
    }


def apply(model, cfg: Config):
    from peft import BeftConfig, get_peft_model

    biased = _biased_linears(model)
    if not biased:
        raise ConfigError(
            f"method 'bitfit' trains bias terms, but {type(model).__name__} has no biases in its linear "
            "layers (Llama-style models such as SmolLM2 have none), so nothing would train; use "
            "method.name=lora (or freeze) for this model"
        )
    # short names (q_proj, ...) where every layer of that name has a bias, else the full names
    short = {n.rsplit(".", 1)[-1] for n in biased}
    linears = {n for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    consistent = all(n in biased for n in linears if n.rsplit(".", 1)[-1] in short)
    targets = sorted(short) if consistent else sorted(biased)
    return get_peft_model(model, BeftConfig(task_type="CAUSAL_LM", target_modules=targets))
