"""`tuneforge ls methods|stages|formats|templates|commands|tasks`: what each registry holds."""

from __future__ import annotations


def list_entries(what: str) -> str:
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
    lines = []
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
        lines.append(f"{name:<12} {desc}{extra}")
    return "\n".join(lines)
