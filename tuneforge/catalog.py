"""`tuneforge ls methods|stages|formats|templates`: what each registry holds."""

from __future__ import annotations


def list_entries(what: str) -> str:
    if what == "methods":
        from tuneforge.methods import METHODS as reg
    elif what == "stages":
        from tuneforge.stages import STAGES as reg
    elif what == "formats":
        from tuneforge.data.formats import FORMATS as reg
    else:
        from tuneforge.data.templates import TEMPLATES as reg
    lines = []
    for name in reg.names():
        mod = reg.get(name)
        desc = getattr(mod, "DESCRIPTION", (mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else "")
        extra = ""
        supports = getattr(mod, "SUPPORTS", None)
        if supports:
            extra = (
                "  [" + ", ".join(k for k, v in supports.items() if v) + "]" if any(supports.values()) else ""
            )
        lines.append(f"{name:<12} {desc}{extra}")
    return "\n".join(lines)
