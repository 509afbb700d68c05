# tuneforge serve runs/quickstart-identity &  python examples/serve/client.py --model quickstart-identity
"""Talk to `tuneforge serve` with the official OpenAI client: list the models, ask once, stream once.

    pip install -e ".[serve]"   # the server and this client's `openai` package
    tuneforge serve runs/quickstart-identity &
    python examples/serve/client.py --model quickstart-identity

Both requests are greedy (temperature 0; OpenAI's default is 1), so the streamed answer is the same
text as the whole one.
"""

from __future__ import annotations

import argparse

from openai import OpenAI


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    p.add_argument("--api-key", default="unused", help="the server's --api-key, if it has one")
    p.add_argument("--model", help="a served id (default: the first one listed)")
    p.add_argument("--prompt", default="Who are you?")
    p.add_argument("--max-tokens", type=int, default=64)
    args = p.parse_args()

    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    ids = [m.id for m in client.models.list()]
    print("served:", ", ".join(ids))
    model = args.model or ids[0]
    messages = [{"role": "user", "content": args.prompt}]
    settings = dict(model=model, messages=messages, temperature=0, max_tokens=args.max_tokens)
    answer = client.chat.completions.create(**settings)
    print(f"{model}: {answer.choices[0].message.content} [{answer.choices[0].finish_reason}]")
    print(f"{model} (streamed): ", end="", flush=True)
    for chunk in client.chat.completions.create(**settings, stream=True):
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()


if __name__ == "__main__":
    main()
