"""Helpers for tests that train: write configs and data, run the CLI in-process."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import yaml
from transformers import TrainerCallback

from tuneforge.cli import main

ALPACA_ROWS = [
    {"instruction": "What is your name?", "input": "", "output": "My name is Forge."},
    {"instruction": "Who made you?", "input": "", "output": "The tuneforge team made me."},
    {"instruction": "Add the numbers.", "input": "12 + 30", "output": "12 + 30 = 42"},
    {"instruction": "Say hello in French.", "input": "", "output": "Bonjour !"},
    {"instruction": "What colour is the sky on a clear day?", "input": "", "output": "Blue."},
    {"instruction": "Name a prime number.", "input": "", "output": "Seven is a prime number."},
    {"instruction": "Translate 'cat' to German.", "input": "", "output": "Katze"},
    {"instruction": "Count to three.", "input": "", "output": "One, two, three."},
]


def write_alpaca(path: Path, rows: list[dict] = ALPACA_ROWS) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False))
    return path


def make_config(tmp_path: Path, model_dir: Path, data_path: Path, **sections) -> dict:
    cfg = {
        "model": {"name_or_path": str(model_dir)},
        "data": {"datasets": [{"path": str(data_path), "format": "alpaca"}], "max_length": 64},
        "method": {"name": "lora", "r": 4, "lora_alpha": 8},
        "train": {
            "max_steps": 4,
            "per_device_train_batch_size": 4,
            "learning_rate": 1e-3,
            "logging_steps": 1,
            "save_steps": 2,
            "report_to": ["none"],
            "lr_scheduler_type": "constant",
        },
        "output": {"dir": str(tmp_path / "run"), "plot_loss": False},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def write_config(tmp_path: Path, cfg: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


class Crash(RuntimeError):
    """A simulated crash in the middle of training (resume tests)."""


class CrashAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Crash(f"simulated crash at step {state.global_step}")


@contextlib.contextmanager
def sft_crashing_at(monkeypatch, step: int):
    """Within the block, sft runs raise `Crash` at the end of optimizer step ``step``."""
    import tuneforge.stages._base as stage_base

    real = stage_base.build_causal_lm_trainer

    def crashing(ctx):
        trainer = real(ctx)
        trainer.add_callback(CrashAt(step))
        return trainer

    monkeypatch.setattr("tuneforge.stages.sft.build_trainer", crashing)
    try:
        yield
    finally:
        monkeypatch.setattr("tuneforge.stages.sft.build_trainer", real)


def reply_chat(handler, content: str) -> None:
    """Answer an OpenAI chat request on a test HTTP server (``handler``: a BaseHTTPRequestHandler)."""
    out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    handler.wfile.write(out)


@contextlib.contextmanager
def http_server(handler):
    """A test HTTP server on 127.0.0.1 with ``handler`` (a BaseHTTPRequestHandler class); yields its
    OpenAI-style base URL."""
    from http.server import HTTPServer

    srv = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/v1"
    finally:
        srv.shutdown()
        srv.server_close()
