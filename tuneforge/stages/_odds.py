"""The reference-free pair trainers of TRL's experimental package (ORPO, CPO/SimPO) fed our ids.

Step 6 of a run, shared by `orpo` and `simpo`. Those trainers tokenize each row in
``tokenize_row``; ours instead lays out the pre-tokenized pair (`tuneforge.data.kinds.preference`)
as the columns their collator pads: ``chosen_input_ids`` = prompt + chosen, ``chosen_labels`` = the
same with the prompt masked, and the same for rejected. The NLL term of ORPO is computed on those
labels (TRL's ORPO trains it on the prompt too), so the renderer still decides what is trained.
"""

from __future__ import annotations

import torch
from torch import nn

from tuneforge.data.render import IGNORE_INDEX
from tuneforge.stages._mixin import PreferenceMixin

COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


def pair_row(feature: dict, model=None) -> dict:
    """One pre-tokenized pair as the padded columns of TRL's DPODataCollatorWithPadding."""
    prompt = list(feature["prompt_ids"])
    out = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side in ("chosen", "rejected"):
        answer = list(feature[f"{side}_ids"])
        out[f"{side}_input_ids"] = prompt + answer
        out[f"{side}_attention_mask"] = [1] * (len(prompt) + len(answer))
        out[f"{side}_labels"] = [IGNORE_INDEX] * len(prompt) + answer
    return out


class PairMixin(PreferenceMixin):
    def tokenize_row(self, feature, model=None) -> dict:
        return pair_row(feature, model)


class OddsMixin(PairMixin):
    def concatenated_forward(self, model, batch):
        out = list(super().concatenated_forward(model, batch))
        chosen_logits = out[2]  # [chosen, :-1, vocab]: position t predicts token t + 1
        labels = batch["chosen_labels"][:, 1:].to(chosen_logits.device)
        labels = nn.functional.pad(labels, (0, chosen_logits.shape[1] - labels.shape[1]), value=IGNORE_INDEX)
        out[4] = nn.functional.cross_entropy(
            chosen_logits.reshape(-1, chosen_logits.shape[-1]).float(),
            labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
        ).to(torch.float32)
        return tuple(out)
