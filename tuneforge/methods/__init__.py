"""Tuning methods, one module per name users write as `method.name`.

What a method module defines is `MethodModule` below: ``Config``, ``DESCRIPTION``, ``SUPPORTS``,
``load_kwargs`` and ``apply``, plus optional hooks for methods that reach past the model. The
registry checks every module against it (`tuneforge.registry`); the functions below read the hooks
through it. `tuneforge.models.wrap` is the one place that calls ``apply``. Code that several
methods share lives in ``_``-prefixed modules (``_lora_common``, ``_pieces``, ...), so a method
module's public names are its interface.
"""

from tuneforge.methods._base import MethodConfig
from tuneforge.registry import Interface, Registry, optional


class MethodModule(Interface):
    """A module of `tuneforge.methods`: one tuning method, named by its file."""

    Config: type[MethodConfig]  # the method's keys, with ``name: Literal["<file name>"]``
    DESCRIPTION: str  # one line for `tuneforge ls methods`
    # quantized_base, merge, multi_adapter (several saved adapters of the method load onto one base
    # and switch with PEFT's ``set_adapter``) -> bool
    SUPPORTS: dict[str, bool]

    def load_kwargs(cfg) -> dict:
        """Extra ``from_pretrained`` arguments (e.g. a quantization config)."""

    def apply(model, cfg):
        """The model with the method applied (trainable parameters marked)."""

    @optional
    def training_arguments(cfg) -> dict:
        """Extra `TrainingArguments` fields (e.g. an ``optim`` name); they override the `train:`
        section's values, so say so in the method's field descriptions."""

    @optional
    def create_optimizer(model, cfg, args):
        """The optimizer the method builds (e.g. LoRA+ learning-rate groups); ``args`` is the run's
        `TrainingArguments`."""

    @optional
    def callbacks(cfg, model) -> list:
        """`transformers.TrainerCallback` hooks into the training loop (rank reallocation, periodic
        merge-and-restart); ``model`` is the wrapped model."""

    @optional
    def save_adapter(model, cfg, directory) -> None:
        """For adapters PEFT cannot save (`adapter`, `mam`, `unipelt`): write only the trained
        tensors and the method config into ``RUN_DIR/adapter/`` (manifest ``artifact:
        method_adapter``); `tuneforge.artifacts` calls it, and `chat` and `eval` then work."""

    @optional
    def load_adapter(base_model, cfg, directory):
        """The adapter written by ``save_adapter`` put back onto a freshly loaded base."""

    @optional
    def disable_adapter(model):
        """A context manager inside which the model computes the base's outputs exactly (PEFT
        models have their own ``model.disable_adapter()``)."""

    @optional
    def final_model(model, cfg):
        """The model the run saves, when it differs from the trained one (`relora` folds its last
        cycle into the base and saves the whole model)."""

    together = (("save_adapter", "load_adapter"),)


METHODS = Registry("methods", "tuneforge.methods", interface=MethodModule)


def method_training_arguments(cfg) -> dict:
    """Extra `TrainingArguments` fields of ``cfg``'s method (empty for most methods)."""
    hook = METHODS.hook(cfg.name, "training_arguments")
    return dict(hook(cfg)) if hook else {}


def method_optimizer_factory(cfg):
    """``(model, args) -> Optimizer`` when ``cfg``'s method builds its own optimizer, else None."""
    hook = METHODS.hook(cfg.name, "create_optimizer")
    if hook is None:
        return None
    return lambda model, args: hook(model, cfg, args)


def method_callbacks(cfg, model) -> list:
    """The method's training-loop callbacks for the wrapped ``model`` (empty for most methods)."""
    hook = METHODS.hook(cfg.name, "callbacks")
    return list(hook(cfg, model)) if hook else []


def has_own_adapter(cfg) -> bool:
    """Whether ``cfg``'s method saves and loads its adapter itself (``save_adapter`` / ``load_adapter``)."""
    return METHODS.hook(cfg.name, "save_adapter") is not None


def save_method_adapter(model, cfg, directory) -> None:
    """Save ``model``'s adapter with the method's own ``save_adapter``."""
    METHODS.hook(cfg.name, "save_adapter")(model, cfg, directory)


def load_method_adapter(base_model, cfg, directory):
    """``base_model`` with the adapter saved by `save_method_adapter` in ``directory``."""
    return METHODS.hook(cfg.name, "load_adapter")(base_model, cfg, directory)


def has_adapter(model, cfg) -> bool:
    """Whether ``model`` (wrapped by ``cfg``'s method) can compute its base's outputs with
    `disable_adapter`: a PEFT model, or a method with its own ``disable_adapter`` hook."""
    from peft import PeftModel

    return isinstance(model, PeftModel) or METHODS.hook(cfg.name, "disable_adapter") is not None


def disable_adapter(model, cfg):
    """Context manager in which ``model`` (wrapped by ``cfg``'s method) computes its base's outputs."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.disable_adapter()
    hook = METHODS.hook(cfg.name, "disable_adapter")
    if hook is None:
        from tuneforge.errors import ConfigError

        raise ConfigError(f"method {cfg.name!r} has no adapter to disable: it trains the model itself")
    return hook(model)


def final_model(model, cfg):
    """The model a run saves: the method's ``final_model(model, cfg)`` when it has one, else ``model``."""
    hook = METHODS.hook(cfg.name, "final_model")
    return hook(model, cfg) if hook else model


def supports_table() -> str:
    """The methods' ``SUPPORTS`` as the markdown table in docs/methods.md (a docs test keeps it current)."""
    yes_no = {True: "yes", False: "no"}
    rows = ["| method | quantized base | merge | multi-adapter |", "|---|---|---|---|"]
    for name in METHODS.names():
        sup = METHODS.get(name).SUPPORTS
        cells = [yes_no[bool(sup[k])] for k in ("quantized_base", "merge", "multi_adapter")]
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)
