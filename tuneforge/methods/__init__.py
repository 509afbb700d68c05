"""Tuning methods, one module per name users write as `method.name`.

Each module defines ``Config`` (a pydantic model with ``name: Literal[<file name>]``), a one-line
``DESCRIPTION``, ``SUPPORTS`` (dict: quantized_base, merge, multi_adapter: several saved adapters of
the method load onto one base and switch with PEFT's ``set_adapter``), ``load_kwargs(cfg) -> dict`` (extra
``from_pretrained`` arguments, e.g. a quantization config) and ``apply(model, cfg) -> model``.
`tuneforge.models.wrap` is the one place that calls ``apply``.

Optional hooks, for methods that reach past the model (read by the helpers below):
- ``training_arguments(cfg) -> dict``: extra `TrainingArguments` fields (e.g. an ``optim`` name);
  they override the `train:` section's values, so say so in the method's field descriptions.
- ``create_optimizer(model, cfg, args) -> torch.optim.Optimizer``: the method builds the optimizer
  (e.g. LoRA+ learning-rate groups); ``args`` is the run's `TrainingArguments`.
- ``callbacks(cfg, model) -> list[transformers.TrainerCallback]``: hooks into the training loop
  (e.g. rank reallocation, periodic merge-and-restart). ``model`` is the wrapped model.
"""

from tuneforge.registry import Registry

METHODS = Registry("methods", "tuneforge.methods")


def method_training_arguments(cfg) -> dict:
    """Extra `TrainingArguments` fields of ``cfg``'s method (empty for most methods)."""
    module = METHODS.get(cfg.name)
    return dict(module.training_arguments(cfg)) if hasattr(module, "training_arguments") else {}


def method_optimizer_factory(cfg):
    """``(model, args) -> Optimizer`` when ``cfg``'s method builds its own optimizer, else None."""
    module = METHODS.get(cfg.name)
    if not hasattr(module, "create_optimizer"):
        return None
    return lambda model, args: module.create_optimizer(model, cfg, args)


def method_callbacks(cfg, model) -> list:
    """The method's training-loop callbacks for the wrapped ``model`` (empty for most methods)."""
    module = METHODS.get(cfg.name)
    return list(module.callbacks(cfg, model)) if hasattr(module, "callbacks") else []
