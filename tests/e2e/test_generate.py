"""`tuneforge data generate` through the CLI against a scripted OpenAI-compatible server on
127.0.0.1: every recipe, the filters and their counts, de-duplication and decontamination, the
output a train config reads (via its registry entry), retries through injected failures, and a
rerun that asks the teacher nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import run_cli
from tests.helpers.scripted_server import ScriptedServer
from tests.helpers.teacher_script import teacher

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


@pytest.fixture
def server():
    with ScriptedServer(teacher, model="teacher-1") as s:
        yield s


def recipe(tmp_path: Path, server, recipe: dict, **sections) -> Path:
    cfg = {
        "teacher": {
            "base_url": server.base_url,
            "model": "teacher-1",
            "retries": 2,
            "backoff_s": 0,
            "timeout_s": 5,
        },
        "recipe": recipe,
        "dedup": {"near": "none"},
        "output": {
            "path": str(tmp_path / "out" / "data.jsonl"),
            "registry": str(tmp_path / "out" / "dataset_info.json"),
        },
        "cache_dir": str(tmp_path / "cache"),
    }
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def rows(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]


def stats(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / "data.stats.json").read_text())


def test_topics_tree_writes_answered_requests_with_provenance_and_a_registry_entry(tmp_path, server, capsys):
    r = recipe(
        tmp_path,
        server,
        {
            "name": "topics",
            "goal": "help with geography",
            "topics": ["rivers"],
            "depth": 1,
            "breadth": 2,
            "per_topic": 3,
        },
    )
    code, out, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 0, err
    got = rows(tmp_path)
    assert len(got) == 6  # 1 topic x 2 subtopics x 3 requests
    assert got[0]["messages"][0] == {"role": "user", "content": "Question 0 about rivers part 0?"}
    assert got[0]["messages"][1]["content"].startswith("Here is an answer to: Question 0")
    prov = got[0]["provenance"]
    assert (
        prov["teacher"] == "teacher-1"
        and prov["topic"] == "rivers > rivers part 0"
        and prov["step"] == "answer"
    )
    assert isinstance(prov["seed"], int) and len(prov["template"]) == 12
    assert "generated 6, kept 6" in out and "registry entry 'data'" in out
    registry = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert registry["data"] == {"file_name": "data.jsonl", "formatting": "openai"}
    card = (tmp_path / "out" / "data.card.md").read_text()
    assert "rivers > rivers part 1: 3" in card and "samples kept: 6 of 6" in card
    call = server.calls[0]
    assert call.params["temperature"] == 0.7 and call.params["seed"] == 0 and call.params["n"] == 1


def test_a_rerun_asks_the_teacher_nothing_and_a_killed_run_resumes(tmp_path, server, capsys):
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": [f"Tell me fact {i}" for i in range(6)]},
        output={"overwrite": True},
    )
    assert run_cli(capsys, "data", "generate", str(r))[0] == 0
    asked = len(server.calls)
    first = rows(tmp_path)
    assert asked == 6
    assert run_cli(capsys, "data", "generate", str(r))[0] == 0
    assert len(server.calls) == asked and rows(tmp_path) == first  # every call from the cache
    assert stats(tmp_path)["teacher"]["cached"] == 6
    # a run killed after 4 of 8 calls left them in the cache (a partial last line too): only 4 are asked
    cache = next((tmp_path / "cache").glob("*/calls.jsonl"))
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    r2 = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": [f"Tell me fact {i}" for i in range(8)]},
        output={"overwrite": True},
    )
    assert run_cli(capsys, "data", "generate", str(r2))[0] == 0
    assert len(server.calls) == asked + 4 and len(rows(tmp_path)) == 8


def test_retries_ride_out_429_timeouts_and_garbage_and_a_lost_call_is_counted(tmp_path, server, capsys):
    server.fail_next("429", retry_after=0)
    server.fail_next("malformed")
    server.fail_next("timeout", seconds=2)
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": ["a", "b"]},
        teacher={"concurrency": 1, "timeout_s": 0.5, "retries": 3},  # three failures in a row on call "a"
    )
    code, out, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 0, err
    assert len(rows(tmp_path)) == 2 and stats(tmp_path)["teacher"]["retries"] == 3
    server.fail_next("500", times=3)  # more than retries=2 allows: that call is lost, the other kept
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": ["c", "d"]},
        teacher={"concurrency": 1},
        output={"overwrite": True},
    )
    assert run_cli(capsys, "data", "generate", str(r))[0] == 0
    s = stats(tmp_path)
    assert (
        s["kept"] == 1
        and s["teacher"]["failed"] == 1
        and s["lost_before_samples"] == {"teacher call failed": 1}
    )


def test_a_wrong_key_stops_at_once_naming_the_setting(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TEACHER_API_KEY", "wrong")
    with ScriptedServer(teacher, api_key="right") as s:
        r = recipe(
            tmp_path, s, {"name": "respond", "prompts": ["a"]}, teacher={"api_key_env": "TEACHER_API_KEY"}
        )
        code, _, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 2 and "HTTP 401" in err and "teacher.api_key_env" in err


def test_self_instruct_evol_documents_preference_and_tool_calls(tmp_path, server, capsys):
    cases = {
        "self_instruct": (
            {
                "name": "self_instruct",
                "seeds": ["Explain gravity", "Explain magnets"],
                "rounds": 2,
                "per_round": 3,
            },
            None,
        ),
        "evol": ({"name": "evol", "prompts": ["Describe a cat", "Describe a dog"], "rounds": 2}, None),
        "from_documents": (
            {
                "name": "from_documents",
                "paths": [str(tmp_path / "docs")],
                "chunk_chars": 200,
                "overlap": 20,
                "per_chunk": 2,
            },
            None,
        ),
        "preference": ({"name": "preference", "prompts": ["Say hi", "Say bye"], "k": 3}, None),
        "tool_calls": ({"name": "tool_calls", "tools": TOOLS, "per_tool": 3}, None),
    }
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Rivers flow to the sea. " * 20)
    for name, (rec, _) in cases.items():
        r = recipe(tmp_path, server, rec, output={"overwrite": True}, dedup={"near": "none", "exact": False})
        code, out, err = run_cli(capsys, "data", "generate", str(r))
        assert code == 0, (name, err)
        got = rows(tmp_path)
        if name == "self_instruct":  # 3 per round, 2 rounds; round 2's are too close to round 1's (same text)
            assert [g["messages"][0]["content"] for g in got][:1] == [
                "Explain idea number 0 in simple words for a curious child"
            ]
            assert stats(tmp_path)["lost_before_samples"].get("self_instruct: too close to the pool", 0) >= 1
        if name == "evol":  # two rounds of the operators, in turn
            assert got[0]["messages"][0]["content"].endswith(
                "Give three reasons and one example. Give three reasons and one example."
            )
            assert got[0]["provenance"]["evolved_by"] == "deepen, round 2"
        if name == "from_documents":
            assert got[0]["messages"][1]["content"] == "It says thing 0." and got[0]["provenance"][
                "document"
            ].endswith("a.txt")
        if name == "preference":
            assert len(got) == 2 and got[0]["chosen"]["content"].startswith("good answer 0")
            assert (
                got[0]["rejected"]["content"].startswith("plain answer")
                and got[0]["provenance"]["chosen_score"] == 5
            )
            assert json.loads((tmp_path / "out" / "dataset_info.json").read_text())["data"]["ranking"] is True
        if name == "tool_calls":  # the call whose arguments do not fit the schema is dropped
            assert len(got) == 2 and got[0]["tools"] == TOOLS
            call = got[0]["messages"][1]["tool_calls"][0]["function"]
            assert call == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
            assert stats(tmp_path)["lost_before_samples"] == {
                "tool_calls: arguments do not fit the tool's parameters": 1
            }


def test_filters_dedup_and_decontamination_are_counted(tmp_path, server, capsys):
    (tmp_path / "verify.py").write_text("def check(prompt, answer):\n    return 'skip' not in prompt\n")
    (tmp_path / "test.jsonl").write_text(
        json.dumps({"prompt": "What is the longest river in the whole wide world today?"}) + "\n"
    )
    prompts = [
        "What is the longest river in the whole wide world today? Tell me.",  # contains the test question
        "Tell me about rivers",
        "tell me about RIVERS!",  # an exact duplicate once normalised
        "Please skip this one",  # verify says no
        "x",  # answer too short? no: min_chars 60 below drops the short answers
        "Tell me about lakes",
    ]
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": prompts},
        filters={"verify": f"{tmp_path / 'verify.py'}:check", "min_chars": 33},
        dedup={"near": "none", "decontaminate": [str(tmp_path / "test.jsonl")]},
    )
    code, out, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 0, err
    kept = [g["messages"][0]["content"] for g in rows(tmp_path)]
    assert kept == ["Tell me about rivers", "Tell me about lakes"]
    dropped = stats(tmp_path)["dropped"]
    assert dropped == {
        "verify said no": 1,
        "answer shorter than 33 characters": 1,
        "contaminated": 1,
        "exact duplicate": 1,
    }


def test_rejection_sampling_keeps_the_verified_answers_of_several(tmp_path, capsys):
    """recipe.answers asks n answers per request (n and stop reach the endpoint); verify keeps the
    right ones and exact dedup drops the repeats, so each request keeps its distinct right answers."""

    def sums(call) -> list[str]:
        a, b = (int(x) for x in call.messages[-1]["content"].split()[2].split("+"))
        return [f"{a + b + k % 2}" for k in range(call.params["n"])]  # right, wrong, right, wrong ...

    (tmp_path / "verify.py").write_text(
        "def check(prompt, answer):\n"
        "    a, b = prompt.split()[2].split('+')\n"
        "    return answer.strip() == str(int(a) + int(b))\n"
    )
    with ScriptedServer(sums) as server:
        r = recipe(
            tmp_path,
            server,
            {"name": "respond", "prompts": ["What is 2+3 ?", "What is 4+4 ?"], "answers": 4},
            filters={"verify": f"{tmp_path / 'verify.py'}:check"},
            teacher={"stop": ["\n\n"]},
        )
        code, out, err = run_cli(capsys, "data", "generate", str(r))
        assert code == 0, err
        assert [c.params["n"] for c in server.calls] == [4, 4]
        assert all(c.params["stop"] == ["\n\n"] for c in server.calls)
    got = [(g["messages"][0]["content"], g["messages"][1]["content"]) for g in rows(tmp_path)]
    assert got == [("What is 2+3 ?", "5"), ("What is 4+4 ?", "8")]
    assert stats(tmp_path)["dropped"] == {"verify said no": 4, "exact duplicate": 2}
    assert [g["provenance"]["answer"] for g in rows(tmp_path)] == [0, 0]
    assert "kept 2 (" in out and "50%" in err  # the filters' bar shows the kept share


def test_the_judge_is_calibrated_then_filters(tmp_path, server, capsys):
    human = tmp_path / "human.jsonl"
    human.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"prompt": "p", "answer": "fine", "score": "PASS"},
                {"prompt": "p", "answer": "I refuse", "score": "FAIL"},
                {"prompt": "p", "answer": "also fine", "score": "FAIL"},  # the judge disagrees here
            ]
        )
        + "\n"
    )
    judge = {"scale": "pass_fail", "calibration": str(human)}
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": ["a", "b"], "answer_prompt": "{{ prompt }}"},
        filters={"judge": judge},
    )
    assert run_cli(capsys, "data", "generate", str(r))[0] == 0
    s = stats(tmp_path)
    assert s["judge_calibration"]["agreement"] == pytest.approx(2 / 3) and s["kept"] == 2
    assert rows(tmp_path)[0]["provenance"]["judge_score"] == 1.0
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": ["a"]},
        filters={"judge": {**judge, "min_agreement": 0.9}},
        output={"overwrite": True},
    )
    code, _, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 2 and "agrees with" in err and "67%" in err


def test_the_generated_data_trains_through_its_registry_entry(tmp_path, server, capsys, tiny_llama_dir):
    r = recipe(
        tmp_path,
        server,
        {"name": "respond", "prompts": [f"Name fruit number {i}" for i in range(8)]},
        output={"format": "alpaca"},
    )
    assert run_cli(capsys, "data", "generate", str(r))[0] == 0
    config = {
        "model": {"name_or_path": str(tiny_llama_dir)},
        "data": {
            "dataset_registry": str(tmp_path / "out" / "dataset_info.json"),
            "datasets": [{"name": "data"}],
            "max_length": 64,
        },
        "method": {"name": "lora", "r": 4},
        "train": {"max_steps": 2, "per_device_train_batch_size": 4, "report_to": ["none"]},
        "output": {"dir": str(tmp_path / "run"), "plot_loss": False},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    code, out, err = run_cli(capsys, "data", "inspect", str(tmp_path / "train.yaml"), "--color", "never")
    assert code == 0, err
    assert "samples kept: 8" in out and "[[Here is an answer to: Name fruit number" in out


def test_tool_calls_are_written_and_registered_as_openai_whatever_the_format(tmp_path, server, capsys):
    r = recipe(tmp_path, server, {"name": "tool_calls", "tools": TOOLS}, output={"format": "sharegpt"})
    assert run_cli(capsys, "data", "generate", str(r))[0] == 0
    assert "messages" in rows(tmp_path)[0] and "conversations" not in rows(tmp_path)[0]
    assert json.loads((tmp_path / "out" / "dataset_info.json").read_text())["data"]["formatting"] == "openai"


@pytest.mark.parametrize("kind", ["preference", "tool_calls"])
def test_preference_pairs_and_tool_calls_render_for_their_stages(
    tmp_path, server, capsys, tiny_llama_dir, kind
):
    rec = (
        {"name": "preference", "prompts": ["Say hi", "Say bye"], "k": 3}
        if kind == "preference"
        else {"name": "tool_calls", "tools": TOOLS}
    )
    assert run_cli(capsys, "data", "generate", str(recipe(tmp_path, server, rec)))[0] == 0
    config = {
        "model": {"name_or_path": str(tiny_llama_dir)},
        "data": {
            "dataset_registry": str(tmp_path / "out" / "dataset_info.json"),
            "datasets": [{"name": "data"}],
            "max_length": 256,
        },
        "stage": {"name": "dpo" if kind == "preference" else "sft"},
    }
    if kind == "tool_calls":
        config["data"]["template"] = "chatml_tools"
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    code, out, err = run_cli(capsys, "data", "inspect", str(tmp_path / "train.yaml"), "--color", "never")
    assert code == 0, err
    assert ("samples kept: 2" in out) and (
        "good answer 0" in out if kind == "preference" else "get_weather" in out
    )


def test_bad_recipes_are_one_line_errors(tmp_path, server, capsys):
    r = recipe(tmp_path, server, {"name": "respnd", "prompts": ["a"]})
    code, _, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 2 and "did you mean 'respond'" in err
    r = recipe(tmp_path, server, {"name": "respond", "prompts": ["a"], "colum": "x"})
    code, _, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 2 and "recipe.colum" in err and "did you mean recipe.column" in err
    r = recipe(tmp_path, server, {"name": "respond", "prompts": ["a"], "answer_prompt": "{{ promt }}"})
    code, _, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 2 and "promt" in err and "variables here: prompt" in err
    out = tmp_path / "out" / "data.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("mine\n")
    r = recipe(tmp_path, server, {"name": "respond", "prompts": ["a"]})
    code, _, err = run_cli(capsys, "data", "generate", str(r))
    assert code == 2 and "output.overwrite" in err and out.read_text() == "mine\n"


def test_a_local_model_teaches_in_process_and_its_calls_are_cached(tmp_path, capsys, tiny_llama_dir):
    cfg = {
        "teacher": {"model": str(tiny_llama_dir), "max_tokens": 6, "temperature": 0.8, "batch_size": 2},
        "recipe": {"name": "respond", "prompts": ["Hi", "Hello there", "Good day"]},
        "filters": {"min_chars": 0, "refusals": []},
        "dedup": {"near": "none", "exact": False},
        "output": {"path": str(tmp_path / "out" / "data.jsonl"), "overwrite": True},
        "cache_dir": str(tmp_path / "cache"),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code, out, err = run_cli(capsys, "data", "generate", str(path))
    assert code == 0, err
    first = rows(tmp_path)
    assert len(first) == 3 and stats(tmp_path)["teacher"]["completion_tokens"] > 0
    assert run_cli(capsys, "data", "generate", str(path))[0] == 0
    assert rows(tmp_path) == first and stats(tmp_path)["teacher"]["cached"] == 3
    # a stop string ends each answer before it: every answer is cut where the uncut one held it
    long = [r["messages"][-1]["content"] for r in first]
    stop = next(w for text in long for w in text.split()[1:] if len(w) > 2)
    cfg["teacher"]["stop"] = [stop]
    path.write_text(yaml.safe_dump(cfg))
    assert run_cli(capsys, "data", "generate", str(path))[0] == 0
    cut = [r["messages"][-1]["content"] for r in rows(tmp_path)]
    assert cut != long
    for uncut, short in zip(long, cut, strict=True):
        assert stop not in short and (stop not in uncut or uncut.startswith(short))


@pytest.mark.slow
def test_the_real_smollm2_answers_the_example_recipe(tmp_path, capsys):
    root = Path(__file__).parents[2]
    out = tmp_path / "gen" / "respond.jsonl"
    overrides = [
        f"output.path={out}",
        f"output.registry={tmp_path / 'gen' / 'dataset_info.json'}",
        "recipe.limit=3",
    ]
    overrides += [f"cache_dir={tmp_path / 'cache'}", "teacher.max_tokens=40"]
    import os

    here = os.getcwd()
    os.chdir(root)  # the example's paths are relative to the repository
    try:
        code, text, err = run_cli(
            capsys, "data", "generate", "examples/generate/respond_smollm2.yaml", *overrides
        )
    finally:
        os.chdir(here)
    assert code == 0, err
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert got and all(r["instruction"].startswith("Convert") and r["output"].strip() for r in got)
    assert got[0]["provenance"]["teacher"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
