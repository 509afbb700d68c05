"""`tuneforge chat RUN_DIR`: talk to a trained run with the chat template it trained with.

Interactive (streaming, multi-turn; /reset clears the history, /exit or Ctrl-D quits) or one
shot with ``--prompt`` for scripts (prints only the answer).
"""

from __future__ import annotations

import sys
import threading

import torch

from tuneforge.artifacts import load_run
from tuneforge.generate import generate_answers, prompt_ids, stop_token_ids


def stream_answer(run, messages: list[dict], max_new_tokens: int, temperature: float, out=None) -> str:
    from transformers import TextIteratorStreamer

    out = out or sys.stdout

    tok = run.tokenizer
    ids = torch.tensor([prompt_ids(tok, messages, run.chat_template)])
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        eos_token_id=stop_token_ids(tok, run.stop_tokens),
        pad_token_id=tok.pad_token_id,
        streamer=streamer,
        do_sample=temperature > 0,
    )
    if temperature > 0:
        kwargs["temperature"] = temperature
    thread = threading.Thread(target=run.model.generate, kwargs=kwargs, daemon=True)
    thread.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        out.write(piece)
        out.flush()
    thread.join()
    out.write("\n")
    return "".join(pieces).strip()


def chat(
    run_dir: str, prompt: str | None, system: str | None, max_new_tokens: int, temperature: float
) -> int:
    run = load_run(run_dir)
    base = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        answer = generate_answers(
            run.model,
            run.tokenizer,
            [[*base, {"role": "user", "content": prompt}]],
            chat_template=run.chat_template,
            stop_tokens=run.stop_tokens,
            max_new_tokens=max_new_tokens,
        )[0]
        print(answer)
        return 0
    print(
        f"chatting with {run_dir} ({run.manifest.get('method')} on {run.config.model.name_or_path}); "
        "/reset clears the history, /exit quits"
    )
    history = list(base)
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/reset":
            history = list(base)
            continue
        history.append({"role": "user", "content": text})
        sys.stdout.write("model> ")
        history.append(
            {"role": "assistant", "content": stream_answer(run, history, max_new_tokens, temperature)}
        )
