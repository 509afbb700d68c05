"""Checkpoints that verify themselves: a damaged newest checkpoint is skipped for the previous
intact one (sizes and sha256 recorded at save), a full disk stops with a one-line error and no
partial checkpoint, a resume with other data or method settings is refused, and the run's
train_loss covers every session. Trainers are built directly (no config) on the tiny Llama."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, TrainingArguments

from tuneforge.errors import ConfigError, TrainingError
from tuneforge.training.checkpoints import (
    CHECKSUMS,
    RUN_INFO,
    check_resume_compatible,
    is_no_space,
    latest_checkpoint,
    resume_checkpoint,
    verify_checkpoint,
    write_checkpoint_record,
)

IDENTITY = {
    "data_fingerprint": "1a2b3c4d5e6f7a8b9c0d",
    "data_config": {"datasets": [{"path": "a.json"}], "max_length": 64},
    "method_config": {"name": "lora", "r": 4, "lora_alpha": 8},
    "base_model": "tiny",
    "stage": "sft",
}
# what torch.save and safetensors really raise when the disk fills (seen on a full tmpfs)
TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"
TORCH_WRITE_FAILED = "[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file data/0: file write failed"
SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


def _dataset(n: int = 8):
    torch.manual_seed(0)
    rows = []
    for _ in range(n):
        ids = torch.randint(5, 200, (12,))
        rows.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()})
    return rows


def _trainer(model_dir, out, method: str, identity=None, max_steps: int = 4):
    from peft import LoraConfig, get_peft_model

    from tuneforge.training.trainer import TuneforgeTrainer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        save_steps=2,
        save_strategy="steps",
        save_total_limit=None,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = TuneforgeTrainer(model=model, args=args, train_dataset=_dataset())
    if identity is not None:
        trainer.run_identity = identity
    return trainer


@pytest.fixture(scope="module", params=["lora", "full"])
def trained(request, tmp_path_factory, tiny_llama_dir):
    """A finished 4-step run with checkpoint-2 and checkpoint-4 (the template each test copies)."""
    out = tmp_path_factory.mktemp(f"ckpt-{request.param}")
    _trainer(tiny_llama_dir, out, request.param, IDENTITY).train()
    return request.param, out


@pytest.fixture
def run(trained, tmp_path):
    method, template = trained
    shutil.copytree(template, tmp_path / "run")
    return method, tmp_path / "run"


def _weights(method: str) -> str:
    return "adapter_model.safetensors" if method == "lora" else "model.safetensors"


def test_saved_checkpoints_record_their_files_and_run(run):
    method, run_dir = run
    ckpt = run_dir / "checkpoint-4"
    record = json.loads((ckpt / CHECKSUMS).read_text())["files"]
    for name in [_weights(method), "optimizer.pt", "rng_state.pth", "trainer_state.json", RUN_INFO]:
        assert record[name]["size"] == (ckpt / name).stat().st_size and len(record[name]["sha256"]) == 64
    assert json.loads((ckpt / RUN_INFO).read_text()) == IDENTITY
    assert not (run_dir / ".staging").exists()
    assert resume_checkpoint(run_dir) == (ckpt, [f"resuming from {ckpt}"])


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero(path):
    path.write_bytes(bytes(path.stat().st_size))


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0xFF  # inside the tensor data, past the safetensors header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage, target, expected",
    [
        (_truncate, "WEIGHTS", "is {half:,} bytes, {size:,} were written"),
        (_truncate, "optimizer.pt", "is {half:,} bytes, {size:,} were written"),
        (_truncate, "trainer_state.json", "is {half:,} bytes, {size:,} were written"),
        (_zero, "rng_state.pth", "is not what was written (its sha256 differs)"),
        (lambda p: p.unlink(), "WEIGHTS", "is missing"),
        (_flip, "WEIGHTS", "is not what was written (its sha256 differs)"),
    ],
    ids=[
        "truncated-weights",
        "truncated-optimizer",
        "truncated-state",
        "zeroed-rng",
        "missing-weights",
        "flipped-weights",
    ],
)
def test_a_damaged_latest_checkpoint_is_skipped(run, damage, target, expected):
    method, run_dir = run
    name = _weights(method) if target == "WEIGHTS" else target
    path = run_dir / "checkpoint-4" / name
    size = path.stat().st_size
    damage(path)
    assert latest_checkpoint(run_dir).name == "checkpoint-4"  # what resume picked before
    found, messages = resume_checkpoint(run_dir)
    assert found == run_dir / "checkpoint-2"
    assert messages[0] == f"checkpoint-4 skipped: {name} " + expected.format(half=size // 2, size=size)
    assert messages[1] == f"resuming from {run_dir / 'checkpoint-2'}"


def test_the_skipped_to_checkpoint_resumes(run, tiny_llama_dir):
    method, run_dir = run
    _truncate(run_dir / "checkpoint-4" / "optimizer.pt")
    with pytest.raises(Exception) as crashed:  # the hole: the Trainer itself just crashes
        _trainer(tiny_llama_dir, run_dir, method).train(resume_from_checkpoint=str(run_dir / "checkpoint-4"))
    assert not isinstance(crashed.value, TrainingError)
    found, _ = resume_checkpoint(run_dir)
    trainer = _trainer(tiny_llama_dir, run_dir, method)
    trainer.train(resume_from_checkpoint=str(found))
    assert trainer.state.global_step == 4
    assert verify_checkpoint(run_dir / "checkpoint-4") is None  # written anew, intact


def test_no_intact_checkpoint_is_an_error(run):
    _, run_dir = run
    for step in (2, 4):
        _truncate(run_dir / f"checkpoint-{step}" / "optimizer.pt")
    with pytest.raises(
        TrainingError, match=r"no intact checkpoint in .*checkpoint-4 skipped.*checkpoint-2 skipped"
    ):
        resume_checkpoint(run_dir)
    assert resume_checkpoint(run_dir / "nothing-here") == (None, [])


def test_checkpoints_without_checksums_are_checked_for_state_and_weights(run):
    method, run_dir = run
    for step in (2, 4):
        (run_dir / f"checkpoint-{step}" / CHECKSUMS).unlink()  # as an older tuneforge wrote them
    assert resume_checkpoint(run_dir)[0].name == "checkpoint-4"
    (run_dir / "checkpoint-4" / "trainer_state.json").write_text('{"log_history": [')
    assert verify_checkpoint(run_dir / "checkpoint-4") == "trainer_state.json does not parse"
    (run_dir / "checkpoint-2" / _weights(method)).unlink()
    assert "holds no weights file" in verify_checkpoint(run_dir / "checkpoint-2")
    with pytest.raises(TrainingError):
        resume_checkpoint(run_dir)


def test_a_damaged_checksum_file_skips_the_checkpoint(run):
    _, run_dir = run
    _truncate(run_dir / "checkpoint-4" / CHECKSUMS)
    found, messages = resume_checkpoint(run_dir)
    assert found.name == "checkpoint-2" and messages[0] == f"checkpoint-4 skipped: {CHECKSUMS} is unreadable"


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(TORCH_FULL),
        RuntimeError(TORCH_WRITE_FAILED),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["torch-unexpected-pos", "torch-write-failed", "oserror-enospc"],
)
def test_a_full_disk_leaves_no_partial_checkpoint(tmp_path, tiny_llama_dir, monkeypatch, error):
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f):
            real_save(obj, f, *args, **kwargs)  # a partial file, as a full disk leaves
            raise error
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingError) as e:
        _trainer(tiny_llama_dir, run_dir, "lora").train()
    msg = str(e.value)
    assert msg.startswith("no space left on ") and f"(the filesystem of {run_dir}, mounted at " in msg
    assert (
        "while writing checkpoint-4; the previous checkpoint (checkpoint-2) is intact; free space and " in msg
    )
    assert msg.endswith("resume with train.resume_from_checkpoint=auto") and "\n" not in msg
    assert not (run_dir / ".staging").exists() and not (run_dir / "checkpoint-4").exists()
    assert resume_checkpoint(run_dir)[0] == run_dir / "checkpoint-2"


def test_a_full_disk_while_writing_weights(tmp_path, tiny_llama_dir, monkeypatch):
    from transformers import Trainer

    real = Trainer.save_model

    def save_model(self, output_dir=None, _internal_call=False):
        if output_dir and output_dir.endswith("checkpoint-2"):
            raise SafetensorError(SAFETENSORS_FULL)
        return real(self, output_dir, _internal_call)

    monkeypatch.setattr(Trainer, "save_model", save_model)
    with pytest.raises(
        TrainingError, match="checkpoint-2; no earlier checkpoint is there; free space and run"
    ):
        _trainer(tiny_llama_dir, tmp_path / "run", "lora").train()
    assert not (tmp_path / "run" / ".staging").exists()


def test_other_save_errors_are_not_taken_for_a_full_disk(tmp_path, tiny_llama_dir, monkeypatch):
    def save(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:417] . file not found: archive/data.pkl")

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(RuntimeError, match="file not found"):
        _trainer(tiny_llama_dir, tmp_path / "run", "lora").train()
    assert not is_no_space(OSError(errno.EACCES, "Permission denied"))
    assert not is_no_space(TrainingError("x"))
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert is_no_space(wrapped)


def _checkpoint_with(tmp_path, identity: dict | None):
    ckpt = tmp_path / "run" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    write_checkpoint_record(ckpt, identity)
    return ckpt


def test_resume_with_other_data_is_refused(tmp_path):
    ckpt = _checkpoint_with(tmp_path, IDENTITY)
    data = {**IDENTITY["data_config"], "datasets": [{"path": "b.json"}]}
    args = (ckpt, "3c4d5e6f7a8b9c0d1e2f", IDENTITY["method_config"])
    with pytest.raises(ConfigError) as e:
        check_resume_compatible(*args, False, data_config=data)
    assert str(e.value) == (
        "checkpoint-4 was trained on data 1a2b3c4d..., this config prepares 3c4d5e6f... (data.datasets "
        "changed); resume with the same data, or set train.allow_changed_resume=true to continue anyway"
    )
    with pytest.raises(ConfigError, match=r"\(the data files' contents or the tokenizer changed\)"):
        check_resume_compatible(*args, False, data_config=IDENTITY["data_config"])
    warnings = check_resume_compatible(*args, True, data_config=data)
    assert len(warnings) == 1 and warnings[0].endswith("; continuing (train.allow_changed_resume=true)")


def test_resume_with_other_method_settings_is_refused(tmp_path):
    ckpt = _checkpoint_with(tmp_path, IDENTITY)
    other = {**IDENTITY["method_config"], "r": 8}
    with pytest.raises(ConfigError) as e:
        check_resume_compatible(ckpt, IDENTITY["data_fingerprint"], other, False)
    assert "checkpoint-4 was trained with other method settings (method.r: 4 -> 8)" in str(e.value)
    assert "resume with the same method settings, or set train.allow_changed_resume=true" in str(e.value)
    with pytest.raises(ConfigError, match="base_model 'tiny', this config has 'other'"):
        check_resume_compatible(ckpt, **{**IDENTITY, "base_model": "other"}, allow=False)
    assert check_resume_compatible(ckpt, **IDENTITY, allow=False) == []


def test_checkpoints_of_older_runs_are_not_checked(tmp_path):
    ckpt = _checkpoint_with(tmp_path, None)
    (message,) = check_resume_compatible(ckpt, "ff", {"name": "lora"}, False)
    assert "does not record its data and method settings" in message


def test_run_identity_is_what_train_records(tiny_llama_dir, tmp_path):
    from tests.helpers.runs import make_config, write_alpaca
    from tuneforge.config.load import load_config
    from tuneforge.training.checkpoints import run_identity

    cfg = load_config(None, data=make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json")))
    identity = run_identity(cfg, "abc")
    assert identity["method_config"]["r"] == 4 and identity["data_fingerprint"] == "abc"
    assert identity["data_config"]["datasets"][0]["path"] == str(tmp_path / "d.json")
    assert json.loads(json.dumps(identity)) == identity  # what the checkpoint stores compares equal


def test_whole_run_train_loss_weights_entries_by_the_steps_they_cover():
    from tuneforge.artifacts.save import whole_run_train_loss

    history = [
        {"loss": 4.0, "step": 1},  # logging_first_step
        {"loss": 2.0, "step": 5},  # the mean of steps 2-5
        {"eval_loss": 9.0, "step": 5},
        {"loss": 1.0, "step": 10},  # steps 6-10
        {"train_loss": 1.5, "train_runtime": 3.0, "step": 10},  # the Trainer's own, last session only
    ]
    assert whole_run_train_loss(history) == pytest.approx((4 * 1 + 2 * 4 + 1 * 5) / 10)
    assert whole_run_train_loss([*history[:2], {"loss": 3.0, "step": 5}]) == pytest.approx((4 + 3 * 4) / 5)
    assert whole_run_train_loss([{"eval_loss": 1.0, "step": 2}]) is None
    assert whole_run_train_loss([]) is None


def test_a_full_disk_at_the_final_save(tmp_path):
    from tuneforge.artifacts.save import save_run

    class FullDisk:
        def save_pretrained(self, folder, **kwargs):
            raise Exception("No space left on device (os error 28)")  # what tokenizers raises

    ckpt = _checkpoint_with(tmp_path, IDENTITY)
    with pytest.raises(TrainingError) as e:
        save_run(ckpt.parent, FullDisk(), FullDisk(), None, (), {})
    assert (
        "while writing the trained model, tokenizer and manifest; the previous checkpoint (checkpoint-4)"
        in str(e.value)
    )
    assert not (ckpt.parent / "manifest.json").exists()
