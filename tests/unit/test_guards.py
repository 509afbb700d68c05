"""The trainer's guards (an all-masked batch, a NaN loss) without a host-device sync per micro-batch on
accelerators: there they are read when the Trainer logs or saves. Tested on the CPU with the deferral
forced, and with every way a tensor is read on the host made to fail inside compute_loss."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.runs import make_config, write_alpaca
from tests.helpers.stages import build_trainer
from tuneforge.errors import TrainingError


def _trainer(tmp_path, model_dir):
    cfg = make_config(tmp_path, model_dir, write_alpaca(tmp_path / "d.json"))
    trainer = build_trainer(cfg, tmp_path / "run")
    trainer.defer_guards = True  # as on an accelerator
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()
    return trainer, batch


@pytest.fixture
def no_host_reads(monkeypatch):
    """Inside the block, reading a tensor's value on the host from tuneforge's trainer raises (the
    model's own code, transformers', may read what it reads)."""
    import sys

    from tuneforge.training import trainer as ours

    names = ("__bool__", "__int__", "__float__", "item", "tolist")
    real = {n: getattr(torch.Tensor, n) for n in names}

    def guarded(name):
        def read(*args, **kwargs):
            if sys._getframe(1).f_code.co_filename == ours.__file__:
                pytest.fail(f"tuneforge's trainer read a tensor on the host: {name}")
            return real[name](*args, **kwargs)

        return read

    class Reads:
        def __enter__(self):
            for n in names:
                monkeypatch.setattr(torch.Tensor, n, guarded(n))

        def __exit__(self, *exc):
            for n, fn in real.items():
                monkeypatch.setattr(torch.Tensor, n, fn)

    return Reads()


def test_compute_loss_reads_nothing_on_the_host(tmp_path, tiny_llama_dir, no_host_reads):
    trainer, batch = _trainer(tmp_path, tiny_llama_dir)
    with no_host_reads:
        loss = trainer.compute_loss(trainer.model, batch)
    assert len(trainer._pending_guards) == 2  # the trained-token count and the loss, kept
    trainer.check_guards()  # both fine: nothing raised, nothing kept
    assert trainer._pending_guards == [] and torch.isfinite(loss)


def test_a_nan_loss_is_caught_at_the_next_check(tmp_path, tiny_llama_dir, monkeypatch):
    trainer, batch = _trainer(tmp_path, tiny_llama_dir)
    real = type(trainer).__mro__[2].compute_loss  # transformers.Trainer's

    def nan_loss(self, *args, **kwargs):
        return real(self, *args, **kwargs) * float("nan")

    monkeypatch.setattr(type(trainer).__mro__[2], "compute_loss", nan_loss)
    trainer.compute_loss(trainer.model, batch)  # kept, not raised yet
    with pytest.raises(TrainingError, match=r"step 1: the loss is nan \(batch of \d+ sequences"):
        trainer.log({"loss": 1.0})


def test_an_all_masked_batch_is_caught_at_the_next_check(tmp_path, tiny_llama_dir):
    trainer, batch = _trainer(tmp_path, tiny_llama_dir)
    batch["labels"] = torch.full_like(batch["labels"], -100)
    trainer.compute_loss(trainer.model, batch)
    with pytest.raises(TrainingError, match="step 1: a batch has no trained token"):
        trainer.check_guards()


def test_on_the_cpu_the_guard_raises_at_once(tmp_path, tiny_llama_dir):
    trainer, batch = _trainer(tmp_path, tiny_llama_dir)
    trainer.defer_guards = False
    batch["labels"] = torch.full_like(batch["labels"], -100)
    with pytest.raises(TrainingError, match="no trained token"):
        trainer.compute_loss(trainer.model, batch)
