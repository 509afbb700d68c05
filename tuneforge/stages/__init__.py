"""Training stages, one module per name users write as `stage.name`.

Each module defines ``Config`` (pydantic, ``name: Literal[<file name>]``), ``DESCRIPTION``,
``SAMPLE_KIND`` ('conversation', 'document', or a kind of `tuneforge.data.kinds` such as
'preference': what its data must convert to) and ``build_trainer(ctx) -> transformers.Trainer``
where ctx is a `tuneforge.train.TrainContext`; optionally ``load_model(cfg)`` when the stage
needs another head than a causal LM (`rm`).
"""

from tuneforge.registry import Registry

STAGES = Registry("stages", "tuneforge.stages")
