"""The web page driven in a real browser: Debian's chromium (apt) under Playwright, started with
``executable_path`` (Playwright's own browser download is never used), and `tuneforge ui` as a
real server process. `walk_the_loop` does the whole loop from the page, as a person would, and
writes a screenshot of each page; the browser test and docs/make_ui_screenshots.py both use it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("TUNEFORGE_CHROMIUM", "/usr/bin/chromium")
# as root in a sandbox, and with no network: no sandbox, no background connections
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ui_server(project: Path, token: str | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """`tuneforge ui` serving ``project``; yields its base address (without the token)."""
    port = free_port()
    argv = [sys.executable, "-m", "tuneforge", "ui", "--host", host, "--port", str(port), "--no-browser"]
    argv += ["--token", token] if token else []
    log = (project / "ui-server.log").open("wb")
    proc = subprocess.Popen(argv, cwd=project, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 60
        while time.time() < end:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None:
                raise RuntimeError((project / "ui-server.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@contextlib.contextmanager
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Walk:
    """What the walk saw, for the test to assert on."""

    streamed_points: int = 0  # chart points that arrived by the event stream, without a reload
    live_after_refresh: bool = False
    final_state: str = ""
    chat_answer: str = ""
    chat_failed: bool = False
    trained_spans: int = 0
    export_state: str = ""
    eval_state: str = ""
    compare_points: int = 0
    shots: list[Path] = field(default_factory=list)


def walk_the_loop(
    page,
    base: str,
    run: str,
    shots: Path,
    *,
    form: dict[str, str],
    data_form: dict[str, str],
    check_stop: bool,
    prompt: str,
    eval_tasks: str,
    start: str = "/new",
    timeout_s: float = 600,
) -> Walk:
    """New run (``start``: the blank form or an example's, then ``form`` filled in) → watch it live
    (refreshing once mid-run) → its page → data (``data_form``) → chat → compare → export →
    evaluate, from the page; a screenshot of each in ``shots``."""
    shots.mkdir(parents=True, exist_ok=True)
    walk = Walk()
    ms = int(timeout_s * 1000)

    def shot(name: str, whole: bool = True) -> None:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=whole)
        walk.shots.append(path)

    page.goto(base + start)
    for key, value in form.items():
        box = page.locator(f'[name="{key}"]').first
        if box.evaluate("e => e.tagName") == "SELECT":
            box.select_option(value)
            page.wait_for_timeout(300)  # a method / stage choice re-renders its fields
        else:
            box.fill(value)
    page.locator("#yaml").filter(has_text=f"dir: runs/{run}").wait_for(timeout=ms)
    page.locator("#problems").filter(has_text="valid").wait_for(timeout=ms)
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.evaluate("window.scrollTo(0, 0)")
    shot("new-run", whole=False)  # the top of the form, beside the preview: the whole form is every key
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("#start")
    page.wait_for_url(f"{base}/runs/{run}", timeout=ms)
    chart = page.locator("#chart")
    page.wait_for_function("document.getElementById('chart').dataset.points > 0", timeout=ms)
    walk.streamed_points = int(chart.get_attribute("data-points"))
    shot("run-live")
    page.reload()  # a refresh mid-run shows the same run, still live
    walk.live_after_refresh = page.locator("#state").inner_text() == "running" and (
        chart.get_attribute("data-live") == "yes"
    )
    for _ in range(5):  # the page reloads itself once its stream ends; a navigation now would race it
        with page.expect_navigation(timeout=ms):
            page.wait_for_function("document.getElementById('chart').dataset.ended === 'yes'", timeout=ms)
        page.wait_for_load_state()
        if page.locator("#chart").get_attribute("data-live") != "yes":
            break
    walk.final_state = page.locator("#state").inner_text()
    shot("run-finished")

    page.goto(f"{base}/runs")
    shot("runs")

    page.goto(f"{base}/data")
    for key, value in data_form.items():
        page.fill(f'[name="{key}"]', value)
    page.click("#run-inspect")
    page.locator("#inspection").wait_for(timeout=ms)
    walk.trained_spans = page.locator(".sample .trained").count()
    shot("data")

    page.goto(f"{base}/chat?run={run}")
    page.fill("#prompt", prompt)
    page.click("#send")
    page.locator(".msg.assistant.done").first.wait_for(timeout=ms)
    walk.chat_answer = page.locator(".msg.assistant").first.inner_text()
    walk.chat_failed = page.locator(".msg.assistant.error").count() > 0
    shot("chat")

    page.goto(f"{base}/compare?run={run}")
    page.wait_for_function("document.getElementById('chart').dataset.points > 0", timeout=ms)
    walk.compare_points = int(page.locator("#chart").get_attribute("data-points"))
    shot("compare")

    page.goto(f"{base}/export?run={run}")
    page.select_option("#x-kind", "merge")
    if not check_stop:
        page.uncheck("#x-check")
    page.click("#run-export")
    walk.export_state = _job_ends(page, ms)
    shot("export")

    page.goto(f"{base}/evaluate?run={run}")
    page.fill("#e-tasks", eval_tasks)
    page.click("#run-eval")
    walk.eval_state = _job_ends(page, ms)
    if walk.eval_state == "finished":
        page.click("#report")
        page.locator("#eval-report").wait_for(timeout=ms)
    shot("evaluate")
    return walk


def _job_ends(page, ms: int) -> str:
    page.wait_for_url("**/jobs/*", timeout=ms)
    page.wait_for_function(
        "document.getElementById('state') && document.getElementById('state').textContent !== 'running'",
        timeout=ms,
    )
    return page.locator("#state").inner_text()
