"""`distill`: a teacher model's knowledge distilled into the student (the model being trained).

Two modes:
- ``mode: token`` (default): the student learns the teacher's next-token distributions on the trained
  tokens of the SFT data (TRL's GKDTrainer): ``loss: forward_kl`` KL(teacher || student), ``reverse_kl``
  KL(student || teacher), ``jsd`` the generalized Jensen-Shannon divergence with ``jsd_beta``. With
  ``lmbda > 0`` that share of batches is on-policy (GKD): the student writes the answers and the teacher
  scores them token by token. Teacher and student must share the tokenizer (checked).
- ``mode: sequence``: the teacher writes an answer to every prompt (greedy, ``max_new_tokens``), and the
  student is trained on those answers through the normal SFT path (the renderer's masking, the SFT
  trainer). Data: prompts as for grpo (answers in the data are ignored).

The teacher is frozen and loaded once; ``teacher`` takes what ``model.name_or_path`` takes (an HF folder,
a .gguf file, ``package:PKG/FILE.gguf``), e.g. a merged export of an earlier run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tuneforge.speed.estimate import StageCost
from tuneforge.stages._base import CAUSAL_LM_SPEED, GENERATING_SPEED
from tuneforge.stages._config import StageConfig

if TYPE_CHECKING:
    from tuneforge.training.build import TrainContext

DESCRIPTION = (
    "Distillation from a teacher: token-level KL / JSD (GKD, on-policy optional) or teacher-written answers."
)
SAMPLE_KIND = "conversation"
SPEED = {"sequence": CAUSAL_LM_SPEED, "token": GENERATING_SPEED}
COST = {"sequence": StageCost(), "token": None}  # token mode generates on-policy answers
LOSS_BETA = {"forward_kl": 0.0, "reverse_kl": 1.0}  # GKD's beta at its two ends; jsd uses jsd_beta


class Config(StageConfig):
    name: Literal["distill"] = "distill"
    teacher: str = Field(
        description="The teacher model: an HF folder, a .gguf file or package:PKG/FILE.gguf."
    )
    mode: Literal["token", "sequence"] = Field(
        "token",
        description="token: match the teacher's next-token distributions; sequence: train on answers the "
        "teacher writes for the prompts.",
    )
    loss: Literal["forward_kl", "reverse_kl", "jsd"] = Field(
        "forward_kl", description="token mode: the divergence between teacher and student distributions."
    )
    jsd_beta: float = Field(0.5, gt=0, lt=1, description="loss=jsd: the teacher's share of the mixture.")
    temperature: float = Field(
        1.0, gt=0, description="token mode: sampling temperature of the on-policy student answers."
    )
    lmbda: float = Field(
        0.0,
        ge=0,
        le=1,
        description="token mode: share of on-policy batches (the student writes the answers).",
    )
    max_new_tokens: int = Field(
        64, gt=0, description="Tokens generated per answer (on-policy student answers; teacher answers)."
    )


def load_teacher(cfg: Config, student_tokenizer):
    """The frozen teacher and its tokenizer; fails clearly when the tokenizers differ."""
    from tuneforge.config.schema import ModelConfig
    from tuneforge.errors import ConfigError
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model, load_tokenizer

    mcfg = ModelConfig(name_or_path=cfg.teacher)
    tok = load_tokenizer(mcfg)
    if tok.get_vocab() != student_tokenizer.get_vocab():
        a, b = len(student_tokenizer.get_vocab()), len(tok.get_vocab())
        raise ConfigError(
            f"stage.teacher: {cfg.teacher!r} uses a different tokenizer than model.name_or_path ({b} vs {a} "
            "tokens, or different ids for the same tokens); distillation compares the models token by token, "
            "so pick a teacher from the same model family"
        )
    teacher = load_model(mcfg, METHODS.get("full").Config())
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher, tok


def prepare_data(cfg, tokenizer, template, sample_kind: str):
    if cfg.stage.mode == "token":
        from tuneforge.data.pipeline import prepare_data as prepare_sft

        return prepare_sft(cfg, tokenizer, template, sample_kind)
    from tuneforge.stages._distill_data import prepare_teacher_answers

    return prepare_teacher_answers(cfg, tokenizer, template, lambda: load_teacher(cfg.stage, tokenizer)[0])


def gkd_arguments(cfg: Config, training_args):
    """Our `train:` (via the run's TrainingArguments) and `stage:` mapped onto TRL's GKDConfig."""
    from tuneforge.stages._gkd_trainer import GKDConfig
    from tuneforge.training.arguments import trl_arguments

    return trl_arguments(
        GKDConfig,
        training_args,
        beta=LOSS_BETA.get(cfg.loss, cfg.jsd_beta),
        temperature=cfg.temperature,
        lmbda=cfg.lmbda,
        max_new_tokens=cfg.max_new_tokens,
        seq_kd=False,
        disable_dropout=True,
        dataset_kwargs={"skip_prepare_dataset": True},
    )


def build_trainer(ctx: TrainContext):
    cfg: Config = ctx.config.stage
    if cfg.mode == "sequence":
        from tuneforge.stages._base import build_causal_lm_trainer

        return build_causal_lm_trainer(ctx)
    from tuneforge.stages._distill_data import prompt_collate
    from tuneforge.stages._gkd_trainer import TuneforgeGKDTrainer

    teacher, _ = load_teacher(cfg, ctx.tokenizer)
    return TuneforgeGKDTrainer(
        model=ctx.model,
        teacher_model=teacher,
        args=gkd_arguments(cfg, ctx.training_args),
        data_collator=prompt_collate(ctx.tokenizer.pad_token_id),
        train_dataset=ctx.train_dataset,
        eval_dataset=ctx.eval_dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        optimizer_factory=ctx.optimizer_factory,
        speed=ctx.speed,
    )
