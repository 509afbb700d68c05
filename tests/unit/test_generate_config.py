"""The pieces of `tuneforge data generate` that need no teacher: every example recipe parses and
starts with its command, recipe errors name the key, JSON is found in a chatty reply, documents
cut into overlapping chunks, and a call's seed and cache key follow its place in the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneforge.errors import ConfigError
from tuneforge.generate.cache import CallCache, call_key
from tuneforge.generate.config import TeacherConfig
from tuneforge.generate.context import parse_json
from tuneforge.generate.recipes import RECIPES
from tuneforge.generate.recipes.from_documents import chunks
from tuneforge.generate.run import load_recipe
from tuneforge.generate.teacher import Ask, Teacher

ROOT = Path(__file__).parents[2]
RECIPE_FILES = sorted((ROOT / "examples" / "generate").glob("*.yaml")) + [
    ROOT / "examples" / "goal" / "extract_recipe.yaml"
]


@pytest.mark.parametrize("path", RECIPE_FILES, ids=[p.name for p in RECIPE_FILES])
def test_example_recipes_parse_and_start_with_their_command(path):
    assert path.read_text().startswith(f"# tuneforge data generate examples/{path.parent.name}/{path.name}")
    cfg = load_recipe(str(path))
    assert cfg.recipe.name in RECIPES.names()


def test_the_example_goal_parses_and_its_base_config_validates(tmp_path):
    from tuneforge.config.load import load_config
    from tuneforge.runs.goal import _base_config, load_goal

    path = ROOT / "examples" / "goal" / "units.yaml"
    assert path.read_text().startswith("# tuneforge goal examples/goal/units.yaml")
    goal = load_goal(str(path))
    assert goal.candidates == {"method.r": [8, 16]}
    base = _base_config(goal, tmp_path, "train.jsonl", "heldout.jsonl")
    cfg = load_config(base)
    assert cfg.compare.prompts == "heldout.jsonl" and cfg.data.datasets[0].format == "alpaca"


def test_the_extraction_goal_parses_and_scores_by_json_match(tmp_path):
    from tuneforge.config.load import load_config
    from tuneforge.runs.goal import _base_config, load_goal

    path = ROOT / "examples" / "goal" / "extract.yaml"
    assert path.read_text().startswith("# tuneforge goal examples/goal/extract.yaml")
    goal = load_goal(str(path))
    assert len(goal.candidates["train.learning_rate"]) == 3
    cfg = load_config(_base_config(goal, tmp_path, "train.jsonl", "heldout.jsonl"))
    assert cfg.compare.metric == "json_match"
    recipe = load_recipe(goal.data.recipe)
    assert recipe.recipe.answers == 3 and recipe.teacher.stop == ["\n\n"] and recipe.filters.verify


def test_every_recipe_has_an_example_or_a_test():
    tested = (ROOT / "tests" / "e2e" / "test_generate.py").read_text()
    for name in RECIPES.names():
        assert f'"name": "{name}"' in tested, f"recipe {name} is not run by tests/e2e/test_generate.py"


def test_recipe_errors_name_the_key():
    base = {"teacher": {"model": "m"}, "output": {"path": "x.jsonl"}}
    with pytest.raises(ConfigError, match="recipe.name: unknown recipe 'topic'.*did you mean 'topics'"):
        load_recipe(None, data={**base, "recipe": {"name": "topic", "goal": "g"}})
    with pytest.raises(ConfigError, match="unknown key teacher.temprature: did you mean teacher.temperature"):
        load_recipe(
            None,
            data={
                **base,
                "teacher": {"model": "m", "temprature": 1},
                "recipe": {"name": "respond", "prompts": []},
            },
        )
    with pytest.raises(ConfigError, match="recipe.goal is required"):
        load_recipe(None, data={**base, "recipe": {"name": "topics"}})
    cfg = load_recipe(
        None,
        ["recipe.limit=3", "teacher.seed=7"],
        data={**base, "recipe": {"name": "respond", "prompts": ["a"]}},
    )
    assert cfg.recipe.limit == 3 and cfg.teacher.seed == 7


def test_json_is_found_in_a_chatty_reply():
    assert parse_json('Sure! ```json\n["a", "b"]\n``` hope that helps') == ["a", "b"]
    assert parse_json('The answer: {"score": 4}.') == {"score": 4}
    assert parse_json('[not json] but {"k": 1}') == {"k": 1}
    assert parse_json("no json here") is None


def test_documents_cut_into_overlapping_chunks_at_spaces():
    text = " ".join(f"w{i}" for i in range(300))
    pieces = chunks(text, 200, 50)
    assert all(len(p) <= 200 for p in pieces) and pieces[0].startswith("w0 ")
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)
    assert pieces[-1].endswith("w299")
    for a, b in zip(pieces, pieces[1:], strict=False):  # each shares words with the one before
        assert set(a.split()) & set(b.split())
    assert " ".join(dict.fromkeys(w for p in pieces for w in p.split())) == text  # nothing lost


def test_a_calls_seed_and_cache_key_follow_its_place(tmp_path):
    t = Teacher(TeacherConfig(model="m", base_url="http://127.0.0.1:9/v1", seed=10), str(tmp_path))
    assert t.params(Ask([{"role": "user", "content": "a"}], index=3))["seed"] == 13
    k1 = call_key(t.identity, [{"role": "user", "content": "a"}], t.params(Ask([], index=3)))
    k2 = call_key(t.identity, [{"role": "user", "content": "a"}], t.params(Ask([], index=4)))
    assert k1 != k2
    cache = CallCache(tmp_path / "c")
    cache.put(k1, ["x"], {"prompt": 1, "completion": 1})
    (tmp_path / "c" / "calls.jsonl").open("a").write('{"key": "half')  # a kill mid-write
    again = CallCache(tmp_path / "c")
    assert len(again) == 1 and again.get(k1)["texts"] == ["x"]
