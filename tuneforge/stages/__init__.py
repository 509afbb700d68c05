"""Training stages, one module per name users write as `stage.name`.

Each module defines ``Config`` (pydantic, ``name: Literal[<file name>]``), ``DESCRIPTION``,
``SAMPLE_KIND`` ('conversation' or 'document': what its data must convert to) and
``build_trainer(ctx) -> transformers.Trainer`` where ctx is a `tuneforge.train.TrainContext`.
"""

from tuneforge.registry import Registry

STAGES = Registry("stages", "tuneforge.stages")
