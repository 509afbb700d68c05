"""`tuneforge estimate` against measured runs: the tuneforge rows of a bench_sft.py table.

    python bench/bench_sft.py --work W ... > table.txt
    python bench/estimate_check.py table.txt --work W [--batch 4] [--gflops G]

For each configuration in the table it builds the same config the bench's tuneforge side trains,
runs the estimate on the same (cached) data and prints predicted vs measured peak memory and
tokens/s with the error in percent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_sft import CONFIGS, LORA, LORA_TARGETS, model_dir  # noqa: E402


def measured_rows(table: Path) -> dict[str, tuple[float, float]]:
    rows = {}
    for line in table.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 4 and cells[1] == "tuneforge":
            rows[cells[0]] = (float(cells[2]), float(cells[3]))
    return rows


def main() -> None:
    from transformers import AutoConfig, AutoTokenizer

    from tuneforge.config.load import load_config
    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.templates import resolve_template
    from tuneforge.speed.estimate import estimate, matmul_flops

    p = argparse.ArgumentParser()
    p.add_argument("table", type=Path)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--batch", type=int, default=0)
    p.add_argument(
        "--gflops",
        type=float,
        help="use this matmul peak (e.g. the one bench_sft.py printed) instead of timing it now, "
        "for when the machine is busy with something else",
    )
    a = p.parse_args()
    flops = a.gflops * 1e9 if a.gflops else matmul_flops(3.0)
    print(f"matmul peak {'given' if a.gflops else 'measured now'}: {flops / 1e9:.1f} GFLOP/s")
    print("| config | peak MB est. | peak MB measured | error | tokens/s est. | tokens/s measured | error |")
    print("|---|---|---|---|---|---|---|")
    for name, (tps, rss) in measured_rows(a.table).items():
        kind, method, lr, batch = CONFIGS[name]
        path = model_dir(kind, a.work)
        m = {"name": "lora", **LORA, "target_modules": LORA_TARGETS} if method == "lora" else {"name": "full"}
        cfg = load_config(
            None,
            data={
                "model": {"name_or_path": path},
                "data": {
                    "datasets": [{"path": str(a.work / "data.json"), "format": "alpaca"}],
                    "max_length": 512,
                    "cache_dir": str(a.work / "cache"),
                },
                "method": m,
                "train": {"per_device_train_batch_size": a.batch or batch, "learning_rate": lr},
            },
        )
        tok = AutoTokenizer.from_pretrained(path)
        data = prepare_data(cfg, tok, resolve_template("auto", tok), "conversation")
        e = estimate(
            cfg, AutoConfig.from_pretrained(path), data.stats.lengths, data.stats.trained_share, flops
        )
        print(
            f"| {name} | {e.peak_mb:.0f} | {rss:.0f} | {e.peak_mb / rss - 1:+.0%} "
            f"| {e.tokens_per_s:.0f} | {tps:.0f} | {e.tokens_per_s / tps - 1:+.0%} |"
        )


if __name__ == "__main__":
    main()
