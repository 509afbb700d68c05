"""`data.default_system`: a run replaces its template's own system prompt (SmolLM2's names SmolLM
and Hugging Face), and every artefact of the run and of its exports carries the new one.

Unit cases (`tuneforge.data.system_prompt`) first, then a tiny LoRA run on the SmolLM2 tokenizer
(the quickstart's template) exported merged and as GGUF + Ollama Modelfile, every file grepped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.runs import make_config, run_cli, write_alpaca
from tuneforge.errors import ConfigError

OLD = "SmolLM"
NEW = "You are a helpful AI assistant."
USER = [{"role": "user", "content": "hi"}]


def _templates(tokenizer):
    from tuneforge.data.templates import resolve_template

    return {name: resolve_template(name, tokenizer) for name in ("auto", "qwen", "chatml", "default")}


def test_a_text_replaces_the_templates_own(tokenizer):
    from tuneforge.data.system_prompt import template_default_system, with_default_system

    for name, template in _templates(tokenizer).items():
        changed = with_default_system(template, NEW, tokenizer)
        text = changed.render(tokenizer, USER, add_generation_prompt=True)
        assert NEW in text and OLD not in text and "Qwen" not in text, (name, text)
        assert template_default_system(changed, tokenizer) is not None
        given = [{"role": "system", "content": "Be brief."}, *USER]
        assert changed.render(tokenizer, given) == template.render(tokenizer, given), name


def test_empty_removes_it_and_unset_keeps_it(tokenizer):
    from tuneforge.data.system_prompt import template_default_system, with_default_system

    smol = _templates(tokenizer)["auto"]
    assert "SmolLM" in template_default_system(smol, tokenizer)
    assert with_default_system(smol, None, tokenizer) is smol
    for template in (smol, _templates(tokenizer)["qwen"]):
        bare = with_default_system(template, "", tokenizer)
        assert bare.render(tokenizer, USER) == "<|im_start|>user\nhi<|im_end|>\n"


def test_a_default_that_cannot_be_removed_is_refused(tokenizer):
    from tuneforge.data.system_prompt import with_default_system
    from tuneforge.data.templates import Template

    hidden = Template(
        "own",
        "{% set p = 'Smol' ~ 'LM here' %}{% if messages[0]['role'] != 'system' %}{{ p + '\\n' }}{% endif %}"
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '<|im_end|>\\n' }}{% endfor %}",
        ("<|im_end|>",),
    )
    with pytest.raises(ConfigError, match=r"data.default_system: \"\" asks for no system prompt.*set data"):
        with_default_system(hidden, "", tokenizer)
    assert NEW in with_default_system(hidden, NEW, tokenizer).render(tokenizer, USER)


def _texts(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_run_and_every_export_carry_the_new_prompt(tmp_path, tiny_llama_dir, capsys):
    from tuneforge.artifacts import load_run
    from tuneforge.config.load import validate
    from tuneforge.train import run_training

    cfg = make_config(tmp_path, tiny_llama_dir, write_alpaca(tmp_path / "d.json"))
    cfg["data"]["default_system"] = NEW
    cfg["train"].update(max_steps=1)
    run_dir = Path(run_training(validate(cfg)))
    run = load_run(run_dir)
    assert NEW in run.chat_template and OLD not in run.chat_template

    merged, ollama = tmp_path / "merged", tmp_path / "ollama"
    code, _, err = run_cli(capsys, "export", str(run_dir), "--merge", str(merged), "--no-check-stop")
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "export", str(run_dir), "--ollama", str(ollama), "--quant", "f32", "--no-check-stop"
    )
    assert code == 0, err
    assert f'SYSTEM """{NEW}"""' in (ollama / "Modelfile").read_text()

    files = {**_texts(run_dir), **_texts(merged), **_texts(ollama)}
    assert any(p.suffix == ".gguf" for p in files) and any(p.name == "chat_template.jinja" for p in files)
    carrying = [p for p, data in files.items() if OLD.encode() in data]
    assert carrying == [], f"the old identity survives in {carrying}"
    assert any(NEW.encode() in data for p, data in files.items() if p.suffix == ".gguf")
