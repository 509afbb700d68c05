"""Our additions to a Trainer (step 7 of a run): `TuneforgeMixin`, used as `TuneforgeTrainer` by
the causal-LM stages (sft, pt) and put in front of TRL's trainers by the preference stages
(`tuneforge.stages._mixin`).

What it adds to `transformers.Trainer`, and only this:
- the tuning method's own optimizer, when the method defines one (`tuneforge.methods`);
- checkpoints are written into a staging folder and renamed into place, so a crash mid-save never
  leaves a half-written ``checkpoint-N`` that resume would pick up;
- guards that stop with a diagnosis instead of training on nothing: a batch with no trained
  token, and a NaN/inf loss;
- the speed plan (`tuneforge.speed.setup`), when a stage passes ``speed``: sample order (longest
  batch first / grouped by length), activation offloading, and an out-of-memory error that names
  the settings to change.
Gradient-accumulation normalisation is the Trainer's own (``num_items_in_batch``: the loss is the
sum over trained tokens divided by the trained tokens of the whole accumulated batch); the
invariance test in tests/invariance checks it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from tuneforge.data.render import IGNORE_INDEX
from tuneforge.errors import TrainingError
from tuneforge.training.checkpoints import STAGING


class TuneforgeMixin:
    """Our additions, put in front of any Trainer subclass (the HF one here, TRL's preference
    trainers in `tuneforge.stages._preference`): the method's optimizer, the batch and loss guards,
    atomic checkpoints. A subclass says what a batch trains by overriding ``trained_tokens``."""

    # keep the guards for the next log or save even on the CPU (tests of the accelerator path)
    defer_guards = False

    def __init__(self, *args, optimizer_factory=None, speed=None, **kwargs):
        self.optimizer_factory = optimizer_factory
        self.speed = speed  # tuneforge.speed.setup.SpeedPlan: sample order, activation offloading
        self._pending_guards: list = []
        super().__init__(*args, **kwargs)

    def train(self, *args, **kwargs):
        out = super().train(*args, **kwargs)
        self.check_guards()  # the steps after the last log
        return out

    def _get_train_sampler(self, train_dataset=None):
        from tuneforge.data.order import LongestFirstSampler, group_by_length_sampler, lengths_of

        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.speed is None or not hasattr(dataset, "__len__"):
            return super()._get_train_sampler(train_dataset)
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        if self.speed.group_by_length:
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return group_by_length_sampler(lengths_of(dataset), batch, seed)
        if self.speed.longest_first:
            # step 1 is the first per-device batch of every rank
            first = self.args.per_device_train_batch_size * max(1, self.args.world_size)
            return LongestFirstSampler(lengths_of(dataset), seed, first)
        return super()._get_train_sampler(train_dataset)

    def training_step(self, *args, **kwargs):
        try:
            return super().training_step(*args, **kwargs)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            text = str(e)
            if not isinstance(e, torch.OutOfMemoryError) and "allocate" not in text:
                raise
            raise TrainingError(
                f"step {self.state.global_step + 1}: out of memory ({text.splitlines()[0][:120]}). "
                "Lower train.per_device_train_batch_size (raise train.gradient_accumulation_steps to "
                "keep the global batch) or data.max_length, or set train.gradient_checkpointing=true; "
                "`tuneforge estimate CONFIG` predicts the peak"
            ) from e

    def trained_tokens(self, inputs: dict) -> torch.Tensor | None:
        """How many tokens of the batch are trained, as a tensor on the batch's device (None: this
        batch shape cannot tell)."""
        labels = inputs.get("labels")
        return None if labels is None else (labels[..., 1:] != IGNORE_INDEX).sum()

    def create_optimizer(self, *args, **kwargs):
        """The method's own optimizer when it has one (LoRA+ groups, ...), else the Trainer's."""
        if self.optimizer is None and self.optimizer_factory is not None:
            self.optimizer = self.optimizer_factory(self.model, self.args)
            return self.optimizer
        return super().create_optimizer(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        trained = self.trained_tokens(inputs)
        step = self.state.global_step + 1
        if trained is not None:
            self._guard(trained == 0, lambda: _no_trained_token(step))
        if self.speed is not None and self.speed.activation_offloading and model.training:
            with torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()):
                result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        else:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss = result[0] if return_outputs else result
        if model.training:
            ids = inputs.get("input_ids", inputs.get("chosen_input_ids"))
            rows = ids.shape[0] if ids is not None else "?"
            value = loss.detach()
            self._guard(~torch.isfinite(value), lambda: _not_finite(step, value, rows, trained))
        return result

    def _guard(self, bad: torch.Tensor, error) -> None:
        """Raise ``error()`` where ``bad`` holds. On the CPU that costs nothing and is checked at once;
        on an accelerator reading it would wait for the device every micro-batch, so it is kept and
        checked when the Trainer logs or saves (it reads the loss then anyway)."""
        if bad.device.type == "cpu" and not self.defer_guards:
            if bool(bad):
                raise error()
            return
        self._pending_guards.append((bad, error))

    def check_guards(self) -> None:
        """The guards kept since the last check, in one read from the device."""
        pending, self._pending_guards = self._pending_guards, []
        if not pending:
            return
        hits = torch.stack([bad.reshape(()) for bad, _ in pending]).nonzero()
        if len(hits):
            raise pending[int(hits[0, 0])][1]()

    def log(self, *args, **kwargs):
        self.check_guards()
        return super().log(*args, **kwargs)

    def _save_checkpoint(self, model, trial) -> None:
        self.check_guards()  # a NaN model is never checkpointed
        from tuneforge.training.checkpoints import is_no_space, no_space_error, write_checkpoint_record

        run_dir = Path(self._get_output_dir(trial=trial))
        staging = run_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        final = run_dir / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        real_get_output_dir = self._get_output_dir
        self._get_output_dir = lambda trial=None: str(staging)
        try:
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                # set by tuneforge.train (tuneforge.training.checkpoints.run_identity)
                write_checkpoint_record(staging / final.name, getattr(self, "run_identity", None))
        except Exception as e:
            if not is_no_space(e):
                raise
            shutil.rmtree(staging, ignore_errors=True)  # the partial checkpoint frees what it took
            raise no_space_error(run_dir, final.name) from e
        finally:
            self._get_output_dir = real_get_output_dir
        if self.args.should_save:
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging / final.name, final)
            shutil.rmtree(staging, ignore_errors=True)
            # the state file recorded the staging path; point it at the final folder
            if self.state.best_model_checkpoint and STAGING in self.state.best_model_checkpoint:
                self.state.best_model_checkpoint = str(final)
            rotate_checkpoints(
                output_dir=str(run_dir),
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=False,
            )


class TuneforgeTrainer(TuneforgeMixin, Trainer):
    """HF Trainer plus our additions: every causal-LM stage (sft, pt) uses it."""


def _no_trained_token(step: int) -> TrainingError:
    return TrainingError(
        f"step {step}: a batch has no trained token (every label is masked), which would train on a "
        "loss of 0. This is a bug in the data path; run `tuneforge data inspect CONFIG` and report the "
        "samples shown"
    )


def _not_finite(step: int, loss: torch.Tensor, rows, trained: torch.Tensor | None) -> TrainingError:
    tokens = int(trained) if trained is not None else "?"
    return TrainingError(
        f"step {step}: the loss is {float(loss)} (batch of {rows} sequences, {tokens} trained tokens). "
        "Lower train.learning_rate, turn off train.fp16, or check the model's dtype"
    )
