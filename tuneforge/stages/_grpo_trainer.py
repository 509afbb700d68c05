"""The GRPO trainer a `grpo` run uses: TRL's GRPOTrainer with tuneforge's trainer behaviour.

What it adds to `trl.GRPOTrainer`:
- `tuneforge.training.trainer.TuneforgeTrainer`'s atomic checkpoints, method optimizer and NaN-loss guard;
- prompts are tokenized by `tuneforge.data.render.render_prompt` (ids prepared with the data), never by
  TRL's own chat-template call, so generation starts from exactly the ids the renderer produced;
- after training, the frozen "ref" adapter TRL adds for the KL term of an adapter run is removed, so the
  saved adapter is only the trained one; the last logged reward/KL metrics go into the result's metrics.
"""

from __future__ import annotations

from trl import GRPOTrainer

from tuneforge.errors import DataError
from tuneforge.stages._trl import final_metrics
from tuneforge.training.trainer import TuneforgeTrainer

# the logged metrics the manifest keeps, last value each
METRIC_PREFIXES = ("reward", "rewards/", "kl", "completions/mean_length", "entropy", "clip_ratio/region_mean")


class TuneforgeGRPOTrainer(TuneforgeTrainer, GRPOTrainer):
    def __init__(self, *args, **kwargs):
        self._prompt_ids: dict[str, list[int]] = {}
        for ds in (kwargs.get("train_dataset"), kwargs.get("eval_dataset")):
            if ds is not None:
                self._prompt_ids.update(zip(ds["prompt"], ds["prompt_ids"], strict=True))
        super().__init__(*args, **kwargs)

    def _tokenize_prompts(self, prompts: list):
        try:
            return [list(self._prompt_ids[p]) for p in prompts], None, {}
        except KeyError as e:
            raise DataError(f"grpo: a prompt was not prepared by the data pipeline: {str(e)[:80]}") from None

    def train(self, *args, **kwargs):
        try:
            result = super().train(*args, **kwargs)
        finally:
            peft_config = getattr(self.model, "peft_config", None)
            if peft_config and "ref" in peft_config:
                self.model.delete_adapter("ref")
        result.metrics.update(final_metrics(self.state.log_history, METRIC_PREFIXES))
        return result
