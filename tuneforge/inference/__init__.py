"""Generating with a model: `generate` (the run's chat template, stop tokens), `chat` (`tuneforge
chat`), `compare` (base vs trained answers to the comparison prompts) and `judge` (the one client for
an LLM judge: an OpenAI-compatible endpoint or a local model folder)."""
