"""`tuneforge ui` in a real browser (Debian's chromium under Playwright): the New-run form filled
for a tiny model, the run started and its chart updated by the event stream until it finishes (with
a refresh mid-run showing it still live), its page, data, chat, compare, export and evaluate; a
wrong token gets 401. Screenshots of each page go to $TUNEFORGE_UI_SHOTS (default: the test's
folder). Run alone with `python -m pytest -m browser`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, browser, ui_server, walk_the_loop
from tests.helpers.ui import make_project, train_form

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).is_file():
    pytest.fail(
        f"the browser tests need chromium at {CHROMIUM}: `apt-get install chromium` (as .ci/run does), "
        "or deselect them with -m 'not browser'",
        pytrace=False,
    )
pytest.importorskip("playwright")


def test_the_whole_loop_from_the_page(tmp_path, tiny_llama_dir):
    project = make_project(tmp_path / "project")
    shots = Path(os.environ.get("TUNEFORGE_UI_SHOTS") or tmp_path / "shots")
    form = train_form(tiny_llama_dir, "from-page", max_steps=300, **{"train.logging_steps": "5"})
    form["train.save_steps"] = "100"
    with ui_server(project, token="tok-123") as base, browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/runs?token=tok-123")  # the address `tuneforge ui` prints; a cookie after
        walk = walk_the_loop(
            page,
            base,
            "from-page",
            shots,
            form=form,
            data_form={k: form[k] for k in ("model.name_or_path", "data.datasets", "data.max_length")},
            check_stop=False,
            prompt="What is your name?",
            eval_tasks="eval/identity_tasks.yaml",
        )
        stranger = b.new_page()
        assert stranger.goto(f"{base}/runs").status == 401
        assert stranger.goto(f"{base}/runs?token=wrong").status == 401
        assert stranger.goto(f"{base}/runs/from-page/events").status == 401
    assert walk.streamed_points > 0 and walk.live_after_refresh
    assert walk.final_state == "finished"
    assert walk.trained_spans > 0
    assert not walk.chat_failed  # a tiny random model's answer may be only whitespace: it streamed and ended
    assert walk.compare_points >= 60  # 300 steps logged every 5
    assert walk.export_state == "finished" and walk.eval_state == "finished"
    assert (project / "exports" / "from-page-merged" / "config.json").is_file()
    assert {p.name for p in walk.shots} >= {"new-run.png", "run-live.png", "chat.png", "export.png"}
