"""Which `speed:` switches each stage takes, and the check that a forced switch is never ignored.

Step 2 of a run (before anything heavy is loaded). Each stage module declares ``SPEED``: a
`StageSpeed`, or a dict of them keyed by the stage's ``mode`` (`distill`'s modes train differently).
Switches that change how modules compute (the fused LoRA, SwiGLU and RMSNorm layers, activation
offloading) and the process-wide memory switches apply to every stage; the batch-level ones below
are declared per stage. An auto switch (null, or a default the user did not write) that a stage does
not take is simply off; one the user set to true is refused with a one-line error. `tuneforge ls
stages --markdown` prints the table in docs/speed.md from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError


@dataclass(frozen=True)
class StageSpeed:
    """What a stage does with each batch-level switch."""

    packing: bool = False  # the dataset packed into rows of max_length (causal-LM stages)
    # padding-free batches: "rows" from the collator (causal-LM stages), "unpad" inside the decoder
    # (a padded batch run as one row of its real tokens: the pair stages), or not at all
    padding_free: Literal["rows", "unpad"] | None = None
    varlen_attention: bool = False  # sdpa once per sample in padding-free rows
    # the loss from hidden states in chunks: "tuneforge" (ours), "trl" (TRL computes log-probs with
    # its own fused LM head, always), or not at all
    chunked_cross_entropy: Literal["tuneforge", "trl"] | None = None
    longest_first: bool = False  # the sampler; a stage with its own sampler (grpo) cannot
    group_by_length: bool = False
    why_not: str = ""  # said in a refusal: why this stage cannot take a batch-level switch


# what a stage that trains on rendered ids + labels takes (sft, pt): our collator, sampler, chunked loss
CAUSAL_LM = StageSpeed(
    packing=True,
    padding_free="rows",
    varlen_attention=True,
    chunked_cross_entropy="tuneforge",
    longest_first=True,
    group_by_length=True,
)

BATCH_SWITCHES = ("packing", "padding_free", "varlen_attention", "chunked_cross_entropy", "longest_first",
                  "group_by_length")  # fmt: skip


def stage_speed(stage, stage_cfg) -> StageSpeed:
    """The stage module's declaration, for this stage config."""
    declared = stage.SPEED
    return declared[stage_cfg.mode] if isinstance(declared, dict) else declared


def resolve(speed: SpeedConfig, stage_name: str, support: StageSpeed) -> SpeedConfig:
    """``speed`` with every batch-level switch this stage does not take turned off; a switch the user
    set to true that it does not take is a ConfigError, and so is chunked_cross_entropy=false where
    TRL's fused head computes it regardless."""
    changes = {}
    for name in BATCH_SWITCHES:
        value, given = getattr(speed, name), name in speed.model_fields_set
        takes = getattr(support, name)
        if name == "chunked_cross_entropy" and takes == "trl":
            if value is False and given:
                raise ConfigError(
                    f"speed.chunked_cross_entropy=false: stage {stage_name} runs on TRL, which computes "
                    "log-probabilities with its own fused LM head and never the full logits; remove the key"
                )
            changes[name] = None  # ours stays off: TRL's head is the chunked loss
            continue
        if takes:
            continue
        if value and given:
            why = f" ({support.why_not})" if support.why_not else ""
            raise ConfigError(
                f"speed.{name}=true: stage {stage_name} does not take it{why}; remove the key or set it to "
                "false (docs/speed.md lists what each stage takes)"
            )
        changes[name] = False
    return speed.model_copy(update=changes)


def support_table(stages) -> str:
    """The stages' declarations as the markdown table in docs/speed.md (a docs test keeps it current)."""
    rows = ["| stage | " + " | ".join(BATCH_SWITCHES) + " |", "|---" * (len(BATCH_SWITCHES) + 1) + "|"]
    for name in stages.names():
        declared = stages.get(name).SPEED
        variants = declared.items() if isinstance(declared, dict) else [(None, declared)]
        for mode, support in variants:
            label = f"`{name}`" + (f" (mode {mode})" if mode else "")
            rows.append(
                f"| {label} | " + " | ".join(_cell(getattr(support, s)) for s in BATCH_SWITCHES) + " |"
            )
    return "\n".join(rows)


def _cell(value) -> str:
    return {True: "yes", False: "no", None: "no", "rows": "yes (rows)", "unpad": "yes (unpadded)",
            "tuneforge": "yes", "trl": "built in (TRL)"}[value]  # fmt: skip
