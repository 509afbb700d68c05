"""The candidate runner through the CLI on a tiny model: `tuneforge sweep` ranks a grid into a
leaderboard, skips finished candidates and resumes a crashed one; `tuneforge bench methods` fills
every column; `tuneforge ls methods --model` prints the shares count_parameters gives."""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers.runs import make_config, run_cli, write_alpaca, write_config
from tuneforge.config.schema import ModelConfig
from tuneforge.methods import METHODS
from tuneforge.models.load import load_model
from tuneforge.models.wrap import count_parameters, wrap


@pytest.fixture
def config(tmp_path, tiny_llama_dir):
    data = write_alpaca(tmp_path / "data.json")
    return write_config(tmp_path, make_config(tmp_path, tiny_llama_dir, data))


def test_sweep_ranks_skips_finished_and_resumes_a_crash(config, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", str(config), "--grid", "train.learning_rate=1e-3,3e-3", "--out", str(out)]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err[-2000:]
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["metric"] == "train_loss" and board["minimize"] is True
    rows = board["rows"]
    assert {r["name"] for r in rows} == {"learning_rate=1e-3", "learning_rate=3e-3"}
    assert all(r["status"] == "trained" and r["peak_rss_mb"] > 100 and r["tokens_per_s"] > 0 for r in rows)
    assert rows[0]["train_loss"] <= rows[1]["train_loss"]  # best first
    best = rows[0]["run_dir"]
    assert (
        f"tuneforge chat {best}" in stdout
        and f"tuneforge chat {best}" in (out / "leaderboard.md").read_text()
    )
    assert (out / "leaderboard.png").stat().st_size > 1000
    for r in rows:  # the learning rate really differed
        assert yaml.safe_load(open(f"{r['run_dir']}/config.yaml"))["train"]["learning_rate"] == float(
            r["name"].split("=")[1]
        )

    # candidate A finished; candidate B "crashed" after checkpoint-2 (no manifest, no checkpoint-4)
    done, crashed = out / "learning_rate=1e-3", out / "learning_rate=3e-3"
    stamp = (done / "manifest.json").stat().st_mtime_ns
    for name in ("manifest.json", "adapter", "checkpoint-4"):
        target = crashed / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err[-2000:]
    assert "learning_rate=1e-3: finished earlier, not retrained" in stdout
    assert (done / "manifest.json").stat().st_mtime_ns == stamp
    rows = {r["name"]: r for r in json.loads((out / "leaderboard.json").read_text())["rows"]}
    assert rows["learning_rate=1e-3"]["status"] == "done"
    assert rows["learning_rate=3e-3"]["status"] == "resumed"
    metrics = json.loads((crashed / "manifest.json").read_text())["metrics"]
    assert metrics["global_step"] == 4
    # the resumed session trained only steps 3 and 4
    assert round(metrics["train_steps_per_second"] * metrics["train_runtime"]) == 2


def test_bench_methods_fills_every_column(tmp_path, tiny_llama_dir, capsys):
    data = write_alpaca(tmp_path / "data.json")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Add 2 and 3.", "answer": "5"}\n{"prompt": "Say hi.", "answer": "hi"}\n')
    cfg = make_config(tmp_path, tiny_llama_dir, data, compare={"prompts": str(prompts), "max_new_tokens": 4})
    cfg["data"]["eval_split"] = 2
    config = write_config(tmp_path, cfg)
    settings = tmp_path / "settings.yaml"
    settings.write_text("lora: {method: {r: 2, lora_alpha: 4}, train: {learning_rate: 1.0e-3}}\n")
    out = tmp_path / "bench"
    code, stdout, err = run_cli(
        capsys, "bench", "methods", str(config), "--methods", "lora,badam", "--steps", "2",
        "--settings", str(settings), "--out", str(out),
    )  # fmt: skip
    assert code == 0, err[-2000:]
    table = (out / "bench.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| lora") or line.startswith("| badam")]
    assert len(lines) == 2
    for line in lines:
        assert " - " not in line, f"empty cell in {line}"
    rows = {r["name"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    assert rows["lora"]["merges"] is True and rows["badam"]["merges"] is False
    assert rows["badam"]["size_mb"] > rows["lora"]["size_mb"]  # whole model versus adapter
    # the settings file reached the run: r=2 trains exactly what count_parameters says for r=2
    lora = METHODS.get("lora").Config(r=2, lora_alpha=4)
    trainable, total = count_parameters(
        wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), lora), lora)
    )
    assert (rows["lora"]["trainable"], rows["lora"]["total"]) == (trainable, total)
    assert (out / "bench.png").stat().st_size > 1000


def test_ls_methods_with_model_prints_the_shares(tiny_llama_dir, capsys):
    code, stdout, err = run_cli(capsys, "ls", "methods", "--model", str(tiny_llama_dir))
    assert code == 0, err
    for name in ("full", "lora", "badam"):
        cfg = METHODS.get(name).Config()
        trainable, total = count_parameters(
            wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg), cfg)
        )
        line = next(line for line in stdout.splitlines() if line.startswith(name + " "))
        assert re.search(rf"\b{trainable:,} of {total:,} \(\s*{100 * trainable / total:.2f}%\)", line), line


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "{config}", "--grid", "train.learning_rate"], "write key=value1,value2"),
        (["sweep", "{config}", "--grid", "train.learnin_rate=1e-3,2e-3"], "did you mean train.learning_rate"),
        (["sweep", "{config}"], "give at least one --grid"),
        (["bench", "methods", "{config}", "--methods", "lora,lorra"], "unknown methods 'lorra'"),
        (["ls", "stages", "--model", "x"], "--model only applies to 'ls methods'"),
    ],
)
def test_bad_input_is_one_line_before_training(argv, message, config, tmp_path, capsys):
    argv = [a.replace("{config}", str(config)) for a in argv]
    code, stdout, err = run_cli(capsys, *argv, *(["--out", str(tmp_path / "o")] if argv[0] != "ls" else []))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


ROOT = Path(__file__).parents[2]
RUNNER_EXAMPLES = sorted((ROOT / "examples" / "sweep").glob("*.yaml")) + [
    ROOT / "examples/bench/arithmetic.yaml"
]


@pytest.mark.parametrize("example", RUNNER_EXAMPLES, ids=[p.stem for p in RUNNER_EXAMPLES])
def test_runner_examples_head_command_is_valid(example, monkeypatch):
    """The command on an example's first line parses, and every candidate it names validates."""
    from tuneforge.cli import build_parser
    from tuneforge.runs.bench import bench_candidates, read_settings
    from tuneforge.runs.candidates import validate_all
    from tuneforge.runs.sweep import grid_candidates, parse_grid

    monkeypatch.chdir(ROOT)
    command = example.read_text().splitlines()[0].removeprefix("# ").split("   (after:")[0]
    argv = shlex.split(command)
    assert argv[0] == "tuneforge"
    args = build_parser().parse_args(argv[1:])
    config = Path(args.config)
    if args.verb == "sweep":
        grid = parse_grid(args.grid)
        candidates = grid_candidates(config, grid, args.overrides)
        assert len(candidates) == math.prod(len(values) for _, values in grid) >= 2  # every combination
        assert len({tuple(c.overrides) for c in candidates}) == len(candidates)
    else:
        names = args.methods.split(",") if args.methods else METHODS.names()
        candidates = bench_candidates(
            config, names, read_settings(Path(args.settings)), args.steps, args.overrides
        )
        assert [c.name for c in candidates] == names and len(names) >= 2  # one candidate per method
    validate_all(candidates, Path(args.out))
