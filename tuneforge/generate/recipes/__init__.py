"""Data generation recipes, one module per `recipe.name` a recipe file names (topics, self_instruct,
evol, respond, from_documents, preference, tool_calls); what a recipe module defines is
`RecipeModule` below. A recipe asks the teacher through the `Context` (`tuneforge.generate.context`)
and returns samples; filtering, de-duplication and writing are the run's (`tuneforge.generate.run`).
Modules import nothing heavy at the top: the recipe schema imports this package to build its union."""

from __future__ import annotations

from tuneforge.generate.recipes._base import RecipeConfig, Sample
from tuneforge.registry import Interface, Registry


class RecipeModule(Interface):
    """A module of `tuneforge.generate.recipes`: one recipe, named by its file."""

    DESCRIPTION: str  # one line for `tuneforge ls recipes`
    Config: type[RecipeConfig]  # the recipe's keys, with ``name: Literal["<file name>"]``

    def run(cfg, ctx) -> list:
        """The samples (`Sample`) the recipe generates, asking through ``ctx``."""

    helpers = (
        "PROMPT",  # each recipe's default prompt templates and output schema, shown in docs/generate.md
        "QUESTIONS_PROMPT",
        "SUBTOPICS_PROMPT",
        "SCHEMA",
        "OPERATORS",
        "chunks",  # from_documents', tested on its own
        "load_tools",  # tool_calls'
    )


RECIPES = Registry("recipes", "tuneforge.generate.recipes", interface=RecipeModule)

__all__ = ["RECIPES", "RecipeConfig", "RecipeModule", "Sample"]
