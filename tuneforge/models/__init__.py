"""Step 5 of a run: the model. `load` finds and loads the base (HF folder, hub id, GGUF file via
`gguf`, converted once and cached), `wrap` applies the tuning method in one place, and `merge`
folds an adapter back into a plain transformers model for export."""
