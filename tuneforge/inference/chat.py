"""`tuneforge chat MODEL_OR_RUN`: talk to a trained run with the chat template it trained with, or
to a plain model (to compare) with its own template or a named one (`tuneforge.inference.load`).

Interactive (streaming, multi-turn; /reset clears the history, /exit or Ctrl-D quits) or one
shot with ``--prompt`` for scripts (prints only the answer on stdout). Greedy by default; a
``--temperature`` above 0 samples (`tuneforge.inference.generate.Sampling`).
"""

from __future__ import annotations

import sys
import threading

import torch

from tuneforge.inference.generate import GREEDY, Sampling, generate_answers, prompt_ids, stop_token_ids
from tuneforge.inference.load import ChatModel, load_chat_model


def stream_answer(
    target: ChatModel, messages: list[dict], max_new_tokens: int, sampling: Sampling = GREEDY, out=None
) -> str:
    from transformers import TextIteratorStreamer

    out = out or sys.stdout
    tok = target.tokenizer
    device = next(target.model.parameters()).device
    ids = torch.tensor([prompt_ids(tok, messages, target.chat_template)], device=device)
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        eos_token_id=stop_token_ids(tok, target.stop_tokens),
        pad_token_id=tok.pad_token_id,
        streamer=streamer,
        **sampling.generate_kwargs(),
    )
    pieces = []
    with sampling.random_state():
        thread = threading.Thread(target=target.model.generate, kwargs=kwargs, daemon=True)
        thread.start()
        for piece in streamer:
            pieces.append(piece)
            out.write(piece)
            out.flush()
        thread.join()
    out.write("\n")
    return "".join(pieces).strip()


def chat(
    source: str,
    prompt: str | None,
    system: str | None,
    max_new_tokens: int,
    sampling: Sampling = GREEDY,
    *,
    template: str | None = None,
    trust_remote_code: bool = False,
) -> int:
    target = load_chat_model(source, template=template, trust_remote_code=trust_remote_code)
    base = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        answer = generate_answers(
            target.model,
            target.tokenizer,
            [[*base, {"role": "user", "content": prompt}]],
            chat_template=target.chat_template,
            stop_tokens=target.stop_tokens,
            max_new_tokens=max_new_tokens,
            sampling=sampling,
        )[0]
        print(answer)
        return 0
    print(f"chatting with {source} ({target.about}); /reset clears the history, /exit quits")
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
            {"role": "assistant", "content": stream_answer(target, history, max_new_tokens, sampling)}
        )
