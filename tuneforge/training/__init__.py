"""A training run's steps, as `tuneforge.train.run_training` calls them: `prepare` (folder, stage,
tokenizer, template, data, model with the method applied), `build` (the stage's trainer),
`arguments` (our config mapped onto TrainingArguments and TRL's configs), `trainer` (our additions to
every trainer), `checkpoints` (staged, checksummed, verified on resume), `finish` (metrics, artifacts)."""
