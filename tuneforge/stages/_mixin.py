"""The mixin that puts our trainer additions (`tuneforge.training.trainer.TuneforgeMixin`: the method's
optimizer, batch and loss guards, atomic checkpoints) in front of TRL's preference trainers.

Step 6/7 of a run, used by every preference stage's ``build_trainer``.
"""

from __future__ import annotations

from tuneforge.training.trainer import TuneforgeMixin

# the last training log's entries that are not metrics of the stage
_NOT_METRICS = {
    "loss", "learning_rate", "grad_norm", "epoch", "step", "num_tokens",
    "num_input_tokens_seen", "train_runtime", "train_tokens_per_second",
}  # fmt: skip


class PreferenceMixin(TuneforgeMixin):
    """TuneforgeMixin for TRL's trainers: trained tokens read from the batch's completion masks or
    labels, and the stage's last logged metrics (reward margins, accuracies, ...) returned with
    the train metrics, so they reach the manifest."""

    def trained_tokens(self, inputs: dict):
        for key in ("completion_mask", "chosen_labels"):
            if key in inputs:
                t = inputs[key]
                return (t != 0).sum() if key == "completion_mask" else (t != -100).sum()
        return None  # rm: a reward model scores whole sequences, nothing is masked

    def train(self, *args, **kwargs):
        out = super().train(*args, **kwargs)
        # step logs have "loss"; the run's closing summary has "train_loss" instead
        logs = [e for e in self.state.log_history if "loss" in e]
        if logs:
            for key, value in logs[-1].items():
                if key not in _NOT_METRICS and isinstance(value, (int, float)):
                    out.metrics[f"train_{key}"] = value
        return out
