"""`pissa`: LoRA initialised from the principal singular values and vectors of each weight (Meng et
al. 2024, https://arxiv.org/abs/2404.02948); the base keeps the residual. Training starts on the
directions that matter most, so it converges faster than LoRA's zero start. The saved adapter is
converted to plain LoRA (rank 2r) for the original base (`_lora_common.save_weights`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tuneforge.methods._base import no_load_kwargs
from tuneforge.methods._lora_common import LoraFields, apply_lora

DESCRIPTION = "PiSSA: LoRA initialised from each weight's top singular vectors; faster convergence."
SUPPORTS = {"quantized_base": False, "merge": True, "multi_adapter": True}


class Config(LoraFields):
    name: Literal["pissa"] = "pissa"
    init_lora_weights: Literal["pissa"] = Field("pissa", description="Always pissa for this method.")
    pissa_niter: int = Field(
        0,
        ge=0,
        description="0: exact SVD of each weight; N > 0: fast randomized SVD with N subspace iterations "
        "(PEFT's pissa_niter_N), much quicker on large models.",
    )

    def peft_init(self) -> str:
        return f"pissa_niter_{self.pissa_niter}" if self.pissa_niter else "pissa"


load_kwargs = no_load_kwargs
apply = apply_lora
