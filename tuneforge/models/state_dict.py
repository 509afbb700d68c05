"""A plain transformers model built from a state dict: where a loaded model cannot be saved as it is
(a GGUF-loaded model, a LoRA merged into a dequantized 4-bit base)."""

from __future__ import annotations

import copy

import torch


def model_from_state_dict(config, state_dict: dict[str, torch.Tensor], dtype: torch.dtype):
    """A plain (unquantized) transformers model of ``config`` holding ``state_dict``.

    Used where a loaded model cannot be saved as is (GGUF-loaded, 4-bit merged). Weights are not
    randomly initialised first: the state dict overwrites them anyway, and for large models the
    initialisation would take longer than the copy.
    """
    model = _build_and_fill(config, state_dict, dtype)
    if model is None and getattr(config, "tie_word_embeddings", False):
        # a separately trained head (e.g. lora modules_to_save=[lm_head]) no longer equals the embeddings
        config = copy.deepcopy(config)
        config.tie_word_embeddings = False
        model = _build_and_fill(config, state_dict, dtype)
    if model is None:
        raise RuntimeError(f"the state dict does not fit {config.architectures or config.model_type}")
    return model.eval()


def _build_and_fill(config, state_dict: dict[str, torch.Tensor], dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers kept it here
        from transformers.modeling_utils import no_init_weights

    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    _, unexpected = model.load_state_dict(state_dict, strict=False)
    model.tie_weights()  # skipped by no_init_weights, done by init otherwise
    own = model.state_dict()
    loaded = {own[k].data_ptr() for k in state_dict if k in own}
    # a key may be missing when it is tied to a loaded one (lm_head sharing the embeddings)
    untied_missing = [k for k in own if k not in state_dict and own[k].data_ptr() not in loaded]
    if unexpected or untied_missing:
        raise RuntimeError(
            f"state dict does not fit {type(model).__name__}: missing {untied_missing}, "
            f"unexpected {unexpected}"
        )
    if not all(torch.equal(own[k], v.to(own[k].device, own[k].dtype)) for k, v in state_dict.items()):
        return None  # tying overwrote a weight that differs from its partner
    return model
