"""The whole loop through `tuneforge ui`'s routes, with real jobs (each a `tuneforge` process) on a
tiny model: a run started from the New-run form streams its metrics and ends finished; it is
chatted with, exported and evaluated from the page; a run stopped mid-way is stopped (not failed)
and resumes to the end; a run whose command fails is failed, with its error in the log."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("jinja2")

from tests.helpers.ui import job_of, train_form, wait_job  # noqa: E402
from tuneforge.ui import jobs  # noqa: E402


def events(ui_client, url: str) -> list[tuple[str, str]]:
    """Every (event, data) of a stream, until its `end`."""
    out, kind = [], None
    with ui_client.stream("GET", url) as s:
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((kind, line[6:]))
                if kind == "end":
                    break
    return out


def test_train_watch_chat_export_and_evaluate_from_the_page(ui_client, ui_project, tiny_llama_dir):
    r = ui_client.post("/new", data=train_form(tiny_llama_dir, "a", max_steps=6), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/runs/a"
    assert "tuneforge train configs/a.yaml" in (ui_project / "configs" / "a.yaml").read_text()
    page = ui_client.get("/runs/a")  # at once, before the run folder exists
    assert page.status_code == 200 and 'id="state">running' in page.text
    seen = events(ui_client, "/runs/a/events")
    losses = [json.loads(d) for k, d in seen if k == "metric" and "loss" in json.loads(d)]
    assert [m["step"] for m in losses] == [1, 2, 3, 4, 5, 6] and all(m["max_steps"] == 6 for m in losses)
    assert json.loads(seen[-1][1])["state"] == "finished"
    assert any(k == "log" and "run saved in runs/a" in d for k, d in seen)

    listing = ui_client.get("/runs").text
    assert 'href="/runs/a"' in listing and "finished" in listing
    assert len(ui_client.get("/runs/a/metrics.json").json()) >= 6

    r = ui_client.post(
        "/chat/stream",
        data={"run": "a", "messages": json.dumps([{"role": "user", "content": "Hi"}]), "max_new_tokens": "5"},
    )
    assert "event: piece" in r.text and r.text.rstrip().endswith("data: {}")

    r = ui_client.post("/export", data={"run": "a", "kind": "merge", "out": ""}, follow_redirects=False)
    job = wait_job(ui_project, job_of(r))
    assert job.state == "finished", jobs.job_log(ui_project, job)
    assert job.command == "tuneforge export runs/a --merge exports/a-merged --no-check-stop"
    assert (ui_project / "exports" / "a-merged" / "config.json").is_file()
    assert "merged model written to" in ui_client.get(f"/jobs/{job.id}").text

    r = ui_client.post(
        "/evaluate", data={"run": "a", "tasks": "eval/identity_tasks.yaml"}, follow_redirects=False
    )
    job = wait_job(ui_project, job_of(r))
    assert job.state == "finished", jobs.job_log(ui_project, job)
    report = ui_client.get("/evaluate/report?run=a").text
    assert 'id="eval-report"' in report and "identity" in report

    clone = ui_client.get("/new?clone=a").text
    assert 'value="runs/a-2"' in clone and 'value="6"' in clone


def test_a_stopped_run_is_stopped_and_resumes_and_a_failed_one_is_failed(
    ui_client, ui_project, tiny_llama_dir
):
    form = train_form(tiny_llama_dir, "b", max_steps=400, **{"train.save_steps": "20"})
    ui_client.post("/new", data=form)
    run_dir = ui_project / "runs" / "b"
    end = time.time() + 120
    while not list(run_dir.glob("checkpoint-*")) and time.time() < end:
        time.sleep(0.2)
    assert 'id="state">running' in ui_client.get("/runs/b").text  # a refresh mid-run: still live
    ui_client.post("/runs/b/stop")
    job = wait_job(ui_project, jobs.latest_job_for(ui_project, "runs/b", "train").id)
    assert job.state == "stopped" and job.exit_code == 130, jobs.job_log(ui_project, job)
    page = ui_client.get("/runs/b").text
    assert 'id="state">stopped' in page and "train.resume_from_checkpoint=auto" in page
    assert ui_client.post("/runs/b/resume", follow_redirects=False).status_code == 303
    resumed = jobs.latest_job_for(ui_project, "runs/b", "train")
    assert resumed.id != job.id and resumed.argv[-1] == "train.resume_from_checkpoint=auto"
    assert wait_job(ui_project, resumed.id).state == "finished", jobs.job_log(ui_project, resumed)
    steps = [m["step"] for m in ui_client.get("/runs/b/metrics.json").json() if "loss" in m]
    assert steps == sorted(set(steps)) and steps[-1] == 400  # one history across the resume
    assert ui_client.post("/runs/b/resume").status_code == 409  # a finished run does not resume

    bad = train_form(tiny_llama_dir, "c", **{"data.datasets": "- path: data/missing.json"})
    ui_client.post("/new", data=bad)
    job = wait_job(ui_project, jobs.latest_job_for(ui_project, "runs/c", "train").id)
    page = ui_client.get("/runs/c").text
    assert job.state == "failed" and 'id="state">failed' in page and "missing.json" in page
