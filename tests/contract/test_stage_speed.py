"""The `speed:` contract of every stage: each declares which batch-level switches it takes
(`tuneforge.speed.support`), a switch forced on that it does not take is refused in one line before
anything loads, the table in docs/speed.md is generated from the declarations, and `tuneforge
estimate` gives numbers for the stage or refuses it in one line. A new stage gets its rows from
the registry (and its `stage:` section from tests/contract/test_stages.py ROWS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract.test_stages import ROWS
from tests.helpers.pref import write_kto, write_pairs
from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tuneforge.config.load import load_config
from tuneforge.config.train import SpeedConfig
from tuneforge.errors import ConfigError
from tuneforge.speed.estimate import StageCost
from tuneforge.speed.support import BATCH_SWITCHES, StageSpeed, resolve, stage_speed, support_table
from tuneforge.stages import STAGES

ROOT = Path(__file__).parents[2]
BASE = {"model": {"name_or_path": "m"}, "data": {"datasets": [{"path": "d.json"}]}}


def _stage_configs(name: str):
    """The stage's config in each of its modes (distill's declarations differ by mode)."""
    modes = STAGES.get(name).SPEED
    variants = list(modes) if isinstance(modes, dict) else [None]
    for mode in variants:
        section = {"name": name, **ROWS[name], **({"mode": mode} if mode else {})}
        yield mode, load_config(None, [], data={**BASE, "stage": section}).stage


@pytest.mark.parametrize("name", STAGES.names())
def test_declarations(name):
    module = STAGES.get(name)
    for mode, stage_cfg in _stage_configs(name):
        assert isinstance(stage_speed(module, stage_cfg), StageSpeed), (name, mode)
        cost = module.COST[mode] if isinstance(module.COST, dict) else module.COST
        assert cost is None or isinstance(cost, StageCost), (name, mode)


@pytest.mark.parametrize("switch", BATCH_SWITCHES)
@pytest.mark.parametrize("name", STAGES.names())
def test_a_forced_switch_is_taken_or_refused_in_one_line(name, switch):
    for mode, stage_cfg in _stage_configs(name):
        support = stage_speed(STAGES.get(name), stage_cfg)
        takes = getattr(support, switch)
        forced = SpeedConfig(**{switch: True})
        if takes:
            resolved = resolve(forced, name, support)
            assert getattr(resolved, switch) in (True, None), (name, mode, switch)
        else:
            with pytest.raises(ConfigError, match=rf"^speed\.{switch}=true: stage {name} does not take it"):
                resolve(forced, name, support)
            # left at its default (auto), the switch is simply off for this stage
            assert not getattr(resolve(SpeedConfig(), name, support), switch)
        if takes == "trl":
            with pytest.raises(ConfigError, match="TRL"):
                resolve(SpeedConfig(**{switch: False}), name, support)


def test_the_support_table_in_the_docs_is_current():
    doc = (ROOT / "docs" / "speed.md").read_text()
    marker = "<!-- generated: tuneforge ls stages --markdown -->\n"
    start = doc.index(marker) + len(marker)
    end = doc.index("\n<!-- end generated -->", start)
    assert doc[start:end] == support_table(STAGES), "regenerate: tuneforge ls stages --markdown"


def _estimate_config(tmp_path: Path, model_dir: Path, name: str, mode: str | None) -> Path:
    if name in ("dpo", "orpo", "simpo", "rm"):
        data, fmt = write_pairs(tmp_path / "pairs.json"), "alpaca"
    elif name == "kto":
        data, fmt = write_kto(tmp_path / "kto.json"), "openai"
    elif name == "pt":
        data, fmt = tmp_path / "text.txt", "text"
        data.write_text("Plain text to continue pre-training on. " * 40)
    else:
        data, fmt = write_alpaca(tmp_path / "d.json"), "alpaca"
    cfg = make_config(tmp_path, model_dir, data)
    cfg["data"]["datasets"][0]["format"] = fmt
    cfg["stage"] = {"name": name, **ROWS[name], **({"mode": mode} if mode else {})}
    if name == "distill":
        cfg["stage"]["teacher"] = str(model_dir)
    return write_config(tmp_path, cfg, f"{name}-{mode}.yaml")


@pytest.mark.parametrize("name", STAGES.names())
def test_estimate_gives_numbers_or_refuses_in_one_line(name, tmp_path, tiny_llama_dir, capsys, monkeypatch):
    monkeypatch.setattr("tuneforge.speed.estimate.matmul_flops", lambda: 1e10)  # not this test's subject
    module = STAGES.get(name)
    for mode, _ in _stage_configs(name):
        cost = module.COST[mode] if isinstance(module.COST, dict) else module.COST
        if mode == "sequence":
            continue  # the teacher writes every answer first: covered by the distill e2e tests
        code, out, err = run_cli(
            capsys, "estimate", str(_estimate_config(tmp_path, tiny_llama_dir, name, mode))
        )
        if cost is None:
            assert code == 2 and err.count("\n") == 1, err
            assert f"cannot estimate stage {name}" in err and "train.max_steps=2" in err
            continue
        assert code == 0, err
        peak = float(out.split("peak memory (first step, longest batch): ")[1].split(" GiB")[0])
        speed = float(out.split("speed: ")[1].split(" tokens/s")[0])
        assert peak > 0 and speed > 0, out


def test_a_pair_costs_more_than_one_answer(tmp_path, tiny_llama_dir):
    """The same prompts and answers: DPO runs the prompt twice and a reference pass, so it is slower
    per sample token and holds more activations than SFT."""
    from transformers import AutoConfig

    from tuneforge.speed.estimate import estimate

    cfg = load_config(_estimate_config(tmp_path, tiny_llama_dir, "sft", None))
    mc = AutoConfig.from_pretrained(tiny_llama_dir)
    lengths = [40, 60, 30, 50]
    sft = estimate(cfg, mc, lengths, 0.3, flops=1e10, cost=STAGES.get("sft").COST)
    dpo = estimate(cfg, mc, lengths, 0.3, flops=1e10, cost=STAGES.get("dpo").COST, chunked_by="trl")
    assert dpo.tokens_per_s < sft.tokens_per_s
    assert dpo.parts_mb["activations"] > sft.parts_mb["activations"]
    full = load_config(_estimate_config(tmp_path, tiny_llama_dir, "sft", None), ["method={name: full}"])
    ref = estimate(full, mc, lengths, 0.3, flops=1e10, cost=STAGES.get("dpo").COST)
    plain = estimate(full, mc, lengths, 0.3, flops=1e10, cost=STAGES.get("sft").COST)
    assert ref.parts_mb["weights"] == pytest.approx(2 * plain.parts_mb["weights"])  # the frozen reference
