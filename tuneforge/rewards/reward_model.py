"""Reward models for grpo and ppo (``model: FOLDER`` in ``stage.reward_funcs``): a model folder, or the
run folder of an `rm` run (its adapter merged into the base), loaded frozen."""

from __future__ import annotations

from pathlib import Path

from tuneforge.errors import ConfigError, TuneforgeError


def load_reward_model(folder: str, where: str):
    """A frozen sequence-classification model with one output, and its tokenizer. ``folder`` is a model
    folder, or the run folder of an `rm` run (its adapter merged into the base)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(folder).expanduser()
    if (path / "manifest.json").is_file():
        model, tok = _rm_run(path, where)
    elif not (path / "config.json").is_file():
        raise ConfigError(
            f"{where}.model: {folder!r} is not a model folder (no config.json) nor a run folder of stage rm; "
            "give a reward model (AutoModelForSequenceClassification with num_labels=1)"
        )
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(path))
        tok = AutoTokenizer.from_pretrained(str(path))
    if model.config.num_labels != 1:
        raise ConfigError(
            f"{where}.model: {folder!r} has {model.config.num_labels} labels; a reward model has exactly one"
        )
    model.requires_grad_(False)
    model.eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _rm_run(run_dir: Path, where: str):
    """An `rm` run folder as one plain model: a LoRA/QLoRA adapter is merged (into a dequantized base for
    QLoRA, `tuneforge.models.merge`), so grpo and ppo score with an ordinary PreTrainedModel."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from tuneforge.models.merge import merge_adapter

    try:
        model = load_rm_run(run_dir, trust_remote_code=False)
    except TuneforgeError as e:
        raise ConfigError(f"{where}.model: {e}") from e
    if isinstance(model, PeftModel):
        model = merge_adapter(model)
    model.config._name_or_path = str(run_dir)  # rewards/<folder name>/... in the logs, as for a model folder
    tok = AutoTokenizer.from_pretrained(str(run_dir / "tokenizer"))
    model.config.pad_token_id = tok.pad_token_id  # the score is read at the last non-pad token
    return model, tok


def load_rm_run(run_dir: str | Path, trust_remote_code: bool = False):
    """A trained `rm` run folder as a scoring model (AutoModelForSequenceClassification, eval mode)."""
    from transformers import AutoModelForSequenceClassification

    from tuneforge.artifacts import read_run
    from tuneforge.models.load import load_model as load_base

    run_dir = Path(run_dir)
    cfg, manifest = read_run(run_dir, trust_remote_code=trust_remote_code)
    if manifest.get("stage") != "rm":
        from tuneforge.errors import ConfigError

        raise ConfigError(f"{run_dir} is a {manifest.get('stage')} run, not a reward model (stage rm)")
    if (run_dir / "model").is_dir():
        return AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    from peft import PeftModel

    base = load_base(cfg.model, cfg.method, auto_class=AutoModelForSequenceClassification, num_labels=1)
    score_in_its_own_dtype(base)
    return PeftModel.from_pretrained(base, run_dir / "adapter").eval()


def score_in_its_own_dtype(model) -> None:
    """On a quantized base the hidden states come in the compute dtype (bf16) while the trained head
    is float32 (PEFT upcasts trainable modules), so the head casts its input to its own dtype."""
    import torch

    def cast(module, args):
        dtype = module.weight.dtype
        return tuple(a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    score = getattr(model, "score", None)
    if isinstance(score, torch.nn.Linear):
        score.register_forward_pre_hook(cast)
