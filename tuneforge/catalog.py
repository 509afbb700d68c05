"""`tuneforge ls methods|stages|formats|templates|commands|tasks`: what each registry holds, and
with `--model PATH` each method's trainable share of that model's parameters."""

from __future__ import annotations


def list_entries(what: str, model: str | None = None) -> str:
    if what == "methods":
        from tuneforge.methods import METHODS as reg
    elif what == "stages":
        from tuneforge.stages import STAGES as reg
    elif what == "formats":
        from tuneforge.data.formats import FORMATS as reg
    elif what == "commands":
        from tuneforge.commands import COMMANDS as reg
    elif what == "tasks":
        from tuneforge.eval.tasks import TASKS as reg
    else:
        from tuneforge.data.templates import TEMPLATES as reg
    shares = method_shares(model) if model and what == "methods" else {}
    width = max((len(v) for v in shares.values() if not v.startswith("n/a")), default=0)
    lines = []
    name_width = max(len(n) for n in reg.names())
    for name in reg.names():
        mod = reg.get(name)
        desc = getattr(mod, "DESCRIPTION", None) or getattr(mod, "HELP", None)
        desc = desc or ((mod.__doc__ or "").strip().splitlines() or [""])[0]
        extra = ""
        supports = getattr(mod, "SUPPORTS", None)
        if supports:
            extra = (
                "  [" + ", ".join(k for k, v in supports.items() if v) + "]" if any(supports.values()) else ""
            )
        share = f"{shares[name]:<{width}}  " if shares else ""
        lines.append(f"{name:<{name_width}}  {share}{desc}{extra}")
    if shares:
        lines.insert(0, f"trainable parameters on {model} with each method's defaults:")
    return "\n".join(lines)


def supports_table() -> str:
    """The methods' ``SUPPORTS`` as the markdown table in docs/methods.md (a docs test keeps it current)."""
    from tuneforge.methods import METHODS

    yes_no = {True: "yes", False: "no"}
    rows = ["| method | quantized base | merge | multi-adapter |", "|---|---|---|---|"]
    for name in METHODS.names():
        sup = METHODS.get(name).SUPPORTS
        cells = [yes_no[bool(sup[k])] for k in ("quantized_base", "merge", "multi_adapter")]
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def method_shares(model_path: str) -> dict[str, str]:
    """Each method's trainable / total parameters on the model, with the method's default config.
    The model loads once; each method gets a fresh copy (a quantizing method loads its own)."""
    import copy

    from tuneforge.config.schema import ModelConfig
    from tuneforge.errors import TuneforgeError
    from tuneforge.methods import METHODS
    from tuneforge.models.load import load_model
    from tuneforge.models.wrap import count_parameters, wrap

    model_cfg = ModelConfig(name_or_path=model_path)
    base = None
    out = {}
    for name in METHODS.names():
        cfg = METHODS.get(name).Config()
        try:
            if METHODS.get(name).load_kwargs(cfg):  # e.g. qlora quantizes while loading
                model = load_model(model_cfg, cfg)
            else:
                base = base if base is not None else load_model(model_cfg, cfg)
                model = copy.deepcopy(base)
            trainable, total = count_parameters(wrap(model, cfg))
            out[name] = f"{trainable:>13,} of {total:,} ({100 * trainable / total:6.2f}%)"
        except TuneforgeError as e:
            out[name] = f"n/a ({e})"
    return out
