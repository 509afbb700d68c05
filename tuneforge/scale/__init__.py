"""Past one process (`scale:`): `launch` (torchrun started by `tuneforge train` itself, rank 0 first for
the data) and `engines` (the DDP, FSDP2 and DeepSpeed ZeRO settings handed to TrainingArguments)."""
