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
- ``save_adapter(model, cfg, directory)`` / ``load_adapter(base_model, cfg, directory) -> model``:
  for adapters PEFT cannot save (`adapter`, `mam`, `unipelt`): write only the trained tensors and
  the method config into ``RUN_DIR/adapter/`` (manifest ``artifact: method_adapter``), and put them
  back onto a freshly loaded base. `tuneforge.artifacts` calls them; `chat` and `eval` then work.
- ``disable_adapter(model)`` -> context manager: inside it the model computes the base's outputs
  exactly (PEFT models have their own ``model.disable_adapter()``).
- ``final_model(model, cfg) -> model``: the model the run saves, when it differs from the trained
  one (`relora` folds its last cycle into the base and saves the whole model).
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


def has_own_adapter(cfg) -> bool:
    """Whether ``cfg``'s method saves and loads its adapter itself (``save_adapter`` / ``load_adapter``)."""
    return hasattr(METHODS.get(cfg.name), "save_adapter")


def save_method_adapter(model, cfg, directory) -> None:
    """Save ``model``'s adapter with the method's own ``save_adapter``."""
    METHODS.get(cfg.name).save_adapter(model, cfg, directory)


def load_method_adapter(base_model, cfg, directory):
    """``base_model`` with the adapter saved by `save_method_adapter` in ``directory``."""
    return METHODS.get(cfg.name).load_adapter(base_model, cfg, directory)


def has_adapter(model, cfg) -> bool:
    """Whether ``model`` (wrapped by ``cfg``'s method) can compute its base's outputs with
    `disable_adapter`: a PEFT model, or a method with its own ``disable_adapter`` hook."""
    from peft import PeftModel

    return isinstance(model, PeftModel) or hasattr(METHODS.get(cfg.name), "disable_adapter")


def disable_adapter(model, cfg):
    """Context manager in which ``model`` (wrapped by ``cfg``'s method) computes its base's outputs."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.disable_adapter()
    module = METHODS.get(cfg.name)
    if not hasattr(module, "disable_adapter"):
        from tuneforge.errors import ConfigError

        raise ConfigError(f"method {cfg.name!r} has no adapter to disable: it trains the model itself")
    return module.disable_adapter(model)


def final_model(model, cfg):
    """The model a run saves: the method's ``final_model(model, cfg)`` when it has one, else ``model``."""
    module = METHODS.get(cfg.name)
    return module.final_model(model, cfg) if hasattr(module, "final_model") else model
