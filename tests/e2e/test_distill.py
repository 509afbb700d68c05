"""`distill` on tiny models: the loss is 0 when teacher == student, two steps train the student and leave
the teacher unchanged (off- and on-policy), teacher-written answers go through the SFT renderer, and a
teacher with another tokenizer is refused."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tests.helpers.stages import assert_trained_and_frozen, build_trainer, snapshot
from tuneforge.config.load import load_config
from tuneforge.stages.distill import gkd_arguments
from tuneforge.training.arguments import training_arguments


def _distill(tmp_path, student, teacher, method=None, **stage):
    cfg = make_config(
        tmp_path,
        student,
        write_alpaca(tmp_path / "data.json"),
        stage={"name": "distill", "teacher": str(teacher), "max_new_tokens": 3, **stage},
    )
    cfg["train"]["max_steps"] = 2
    if method:
        cfg["method"] = method
    return cfg


def test_stage_fields_map_onto_gkd_config(tmp_path):
    base = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}
    for loss, beta in (("forward_kl", 0.0), ("reverse_kl", 1.0), ("jsd", 0.3)):
        over = ["stage.name=distill", "stage.teacher=t", f"stage.loss={loss}", "stage.jsd_beta=0.3"]
        over += [
            "stage.lmbda=0.25",
            "stage.temperature=0.7",
            "stage.max_new_tokens=9",
            "train.learning_rate=2e-5",
        ]
        cfg = load_config(None, over, data=dict(base))
        ta = training_arguments(cfg, tmp_path, has_eval=False)
        args = gkd_arguments(cfg.stage, ta)
        assert (args.beta, args.lmbda, args.temperature, args.max_new_tokens) == (beta, 0.25, 0.7, 9)
        assert args.learning_rate == 2e-5 and args.gradient_checkpointing is False and args.seq_kd is False


def test_loss_is_zero_when_teacher_is_student(tmp_path, tiny_llama_dir, tiny_qwen2_dir):
    trainer = build_trainer(
        _distill(tmp_path, tiny_llama_dir, tiny_llama_dir, {"name": "full"}), tmp_path / "r"
    )
    batch = next(iter(trainer.get_train_dataloader()))
    for beta in (0.0, 1.0, 0.5):  # forward KL, reverse KL, JSD
        trainer.beta = beta
        assert abs(float(trainer.compute_loss(trainer.model, dict(batch)).detach())) < 1e-6
    other = build_trainer(
        _distill(tmp_path, tiny_llama_dir, tiny_qwen2_dir, {"name": "full"}), tmp_path / "r2"
    )
    assert float(other.compute_loss(other.model, dict(batch)).detach()) > 1e-3


@pytest.mark.parametrize("lmbda", [0.0, 1.0])
def test_two_steps_train_the_student_only(tmp_path, tiny_llama_dir, tiny_qwen2_dir, lmbda):
    trainer = build_trainer(
        _distill(tmp_path, tiny_llama_dir, tiny_qwen2_dir, loss="jsd", lmbda=lmbda), tmp_path / "run"
    )
    before, teacher_before = snapshot(trainer.model), snapshot(trainer.teacher_model)
    assert math.isfinite(trainer.train().training_loss)
    assert_trained_and_frozen(before, trainer.model)
    for name, p in trainer.teacher_model.named_parameters():
        assert torch.equal(teacher_before[name][1], p), name


def test_sequence_mode_trains_on_teacher_answers(tmp_path, tiny_llama_dir, tiny_qwen2_dir, tokenizer):
    from tuneforge.config.schema import ModelConfig
    from tuneforge.data.prompts import prepare_prompts
    from tuneforge.data.templates import resolve_template
    from tuneforge.inference.generate import generate_answers
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model

    cfg = _distill(tmp_path, tiny_llama_dir, tiny_qwen2_dir, mode="sequence")
    trainer = build_trainer(cfg, tmp_path / "run")
    template = resolve_template("auto", tokenizer)
    prompts = prepare_prompts(load_config(None, [], data=cfg), tokenizer, template)
    teacher = load_model(ModelConfig(name_or_path=str(tiny_qwen2_dir)), METHODS.get("full").Config())
    answers = generate_answers(
        teacher, tokenizer, list(prompts.train["messages"]), chat_template=template.jinja,
        stop_tokens=template.stop_tokens, max_new_tokens=3,
    )  # fmt: skip
    assert len(trainer.train_dataset) == len(answers) == 8
    for row, answer in zip(trainer.train_dataset, answers, strict=True):
        trained = [t for t in row["labels"] if t != -100]
        assert tokenizer.decode(trained).endswith("<|im_end|>")  # the answer, then the stop token
        assert tokenizer.decode(trained, skip_special_tokens=True).strip() == answer
    before = snapshot(trainer.model)
    assert math.isfinite(trainer.train().training_loss)
    assert_trained_and_frozen(before, trainer.model)


def test_teacher_with_another_tokenizer_is_refused(tmp_path, tiny_llama_dir, tokenizer, capsys):
    other = tmp_path / "other-teacher"
    shutil.copytree(tiny_llama_dir, other)
    tok = tokenizer.__class__.from_pretrained(tiny_llama_dir)
    tok.add_tokens(["<only_in_teacher>"])
    tok.save_pretrained(other)
    cfg = _distill(tmp_path, tiny_llama_dir, other)
    code, _, err = run_cli(capsys, "train", str(write_config(tmp_path, cfg)))
    assert code == 2
    assert "stage.teacher" in err and "different tokenizer" in err and "same model family" in err


def test_qlora_student_trains_its_adapter_only(tmp_path, tiny_llama_dir, tiny_qwen2_dir):
    qlora = {"name": "qlora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    trainer = build_trainer(_distill(tmp_path, tiny_llama_dir, tiny_qwen2_dir, qlora), tmp_path / "run")
    assert any("Params4bit" in type(p).__name__ for p in trainer.model.parameters())
    before, teacher_before = snapshot(trainer.model), snapshot(trainer.teacher_model)
    assert math.isfinite(trainer.train().training_loss)
    assert_trained_and_frozen(before, trainer.model)
    for name, p in trainer.teacher_model.named_parameters():
        assert torch.equal(teacher_before[name][1], p), name
