"""`tuneforge export RUN_DIR`: turn a finished run into artifacts other tools load, each checked
after it is written.

    merged.py   --merge OUT_DIR      a plain HF folder (adapter merged, QLoRA into a dequantized base),
                                     tokenizer, chat template, generation config, model card
    gguf.py     --gguf OUT.gguf      one GGUF file (f32/f16/bf16/q8_0/q4_0/...) with tokenizer and
                                     chat-template metadata, written with the `gguf` package
    ollama.py   --ollama DIR         a Modelfile whose TEMPLATE and stop parameters reproduce the
                                     run's chat template, pointing at the GGUF
    card.py                          the model card (README.md) for the merged folder
"""

from __future__ import annotations

__all__ = ["ExportCheckFailed", "export_merged"]


def __getattr__(name: str):
    # loaded on first use: `tuneforge --help` reads export.targets without torch and transformers
    if name in __all__:
        from tuneforge.export import merged

        return getattr(merged, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
