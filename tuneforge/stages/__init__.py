"""Training stages, one module per name users write as `stage.name`; `StageModule` lists what a
stage module defines (the registry checks every entry against it when it loads)."""

from __future__ import annotations

from tuneforge.registry import Interface, Registry, optional
from tuneforge.speed.estimate import StageCost
from tuneforge.speed.support import StageSpeed
from tuneforge.stages._config import StageConfig


class StageModule(Interface):
    """A module of `tuneforge.stages`: one stage, named by its file."""

    Config: type[StageConfig]  # pydantic, ``name: Literal[<file name>]``
    DESCRIPTION: str  # one line for `tuneforge ls stages`
    # what its data must convert to: 'conversation', 'document', or a kind of `tuneforge.data.kinds`
    SAMPLE_KIND: str
    # the `speed:` batch switches it takes (`tuneforge.speed.support`); a dict keys them by stage.mode
    SPEED: StageSpeed | dict
    # what a sample costs, for `tuneforge estimate` (`tuneforge.speed.estimate`); None: not estimated
    COST: StageCost | dict | None

    def build_trainer(ctx):
        """The stage's trainer from a `tuneforge.training.build.TrainContext`."""

    @optional
    def prepare_data(cfg, tokenizer, template, sample_kind):
        """The stage's own data (prompts for grpo and ppo, teacher answers for distill), instead of
        `tuneforge.data.pipeline.prepare_data`."""

    @optional
    def load_model(cfg):
        """A model with another head than a causal LM (rm: a sequence classifier)."""

    @optional
    def trl_config(config, training_args):
        """TRL's config class filled from the run (the preference stages; tested field by field)."""

    COLUMNS: tuple = ()  # the pre-tokenized columns its trainer reads

    helpers = (
        "LOSS_BETA",  # distill, used by its tests
        "load_teacher",
        "gkd_arguments",
        "grpo_arguments",
        "rollout_size",
    )


STAGES = Registry("stages", "tuneforge.stages", interface=StageModule)
