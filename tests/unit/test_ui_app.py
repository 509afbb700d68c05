"""`tuneforge ui` without a browser (Starlette's test client): every page answers, the token guards
every request and the event stream, paths stay inside the project, the New-run form validates as
the CLI does, and a job records how its command ended."""

from __future__ import annotations

import pytest

pytest.importorskip("jinja2")
from starlette.testclient import TestClient  # noqa: E402

from tests.helpers.ui import train_form, wait_job  # noqa: E402
from tuneforge.ui import jobs  # noqa: E402
from tuneforge.ui.app import build_app, token_for  # noqa: E402
from tuneforge.ui.events import Tail, terminal_line  # noqa: E402
from tuneforge.ui.pages.runs import progress  # noqa: E402
from tuneforge.ui.paths import PathRefused, data_files, inside  # noqa: E402

PAGES = ["/runs", "/new", "/data", "/evaluate", "/chat", "/compare", "/export", "/jobs"]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_answers(ui_client, url):
    r = ui_client.get(url)
    assert r.status_code == 200 and "<nav>" in r.text


def test_the_root_goes_to_the_runs(ui_client):
    r = ui_client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/runs"


def test_token_is_checked_on_every_request_and_the_event_stream(ui_project):
    app = build_app(ui_project, "runs", "s3cret")
    c = TestClient(app)
    for url in [*PAGES, "/static/ui.js", "/runs/x/events", "/jobs/x/events"]:
        assert c.get(url).status_code == 401, url
    assert c.post("/new", data={}).status_code == 401
    assert c.get("/runs?token=wrong").status_code == 401
    assert c.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = c.get("/runs?token=s3cret")  # the address `tuneforge ui` prints
    assert first.status_code == 200 and "tuneforge_ui_token" in first.headers["set-cookie"]
    assert c.get("/data").status_code == 200  # the cookie carries it from then on
    assert TestClient(app).get("/data").status_code == 401


def test_a_token_is_made_off_loopback_only():
    assert token_for("127.0.0.1", None) is None and token_for("localhost", None) is None
    made = token_for("0.0.0.0", None)
    assert made and len(made) >= 20 and made != token_for("0.0.0.0", None)
    assert token_for("127.0.0.1", "mine") == "mine"


def test_paths_outside_the_project_are_refused(ui_project, tmp_path):
    (tmp_path / "outside.json").write_text("[]")
    (ui_project / "link").symlink_to(tmp_path)
    for bad in ["../outside.json", str(tmp_path / "outside.json"), "link/outside.json", ""]:
        with pytest.raises(PathRefused):
            inside(ui_project, bad)
    assert inside(ui_project, "data/identity.json") == ui_project / "data" / "identity.json"
    assert data_files(ui_project) == ["data/heldout.jsonl", "data/identity.json"]  # the symlink not followed


def test_requests_naming_paths_outside_are_refused(ui_client, ui_project):
    r = ui_client.get("/new?example=../../etc/passwd")
    assert r.status_code == 200 and "outside the project folder" in r.text
    assert ui_client.get("/runs/../../etc").status_code == 404
    r = ui_client.post("/export", data={"run": "../..", "kind": "merge"})
    assert r.status_code == 422
    r = ui_client.post("/evaluate", data={"run": "x", "tasks": "/etc/passwd"})
    assert r.status_code == 422
    form = train_form(ui_project, "a")
    form["output.dir"] = "../elsewhere"
    r = ui_client.post("/new", data=form)
    assert r.status_code == 422 and "outside the project folder" in r.text
    form["output.dir"] = "other/a"
    r = ui_client.post("/new", data=form)
    assert r.status_code == 422 and "not under runs" in r.text
    assert not (ui_project / "configs").exists() and not jobs.list_jobs(ui_project)


def test_the_form_is_validated_as_the_cli_validates(ui_client, ui_project):
    form = train_form(ui_project, "a", **{"train.learning_rate": "abc"})
    r = ui_client.post("/new/preview", data=form)
    assert "train.learning_rate" in r.text and "valid number" in r.text
    r = ui_client.post("/new", data=form)
    assert r.status_code == 422
    assert 'id="error-train.learning_rate"' in r.text  # the message next to its field
    form = train_form(ui_project, "a", **{"train.learning_rat": "1e-4"})
    r = ui_client.post("/new/preview", data=form)
    assert "did you mean train.learning_rate" in r.text
    r = ui_client.post("/new/preview", data=train_form(ui_project, "a"))
    assert "valid: the CLI accepts this config" in r.text
    assert "tuneforge train configs/a.yaml" in r.text and "max_steps: 6" in r.text
    assert not jobs.list_jobs(ui_project)  # a preview starts nothing


def test_choosing_a_method_shows_its_fields(ui_client, ui_project):
    form = train_form(ui_project, "a", **{"method.name": "loraplus"})
    r = ui_client.post("/new/fields", data=form)
    assert 'name="method.loraplus_lr_ratio"' in r.text
    r = ui_client.post("/new/fields", data=train_form(ui_project, "a"))
    assert 'name="method.loraplus_lr_ratio"' not in r.text and 'name="method.r"' in r.text


def test_a_config_the_page_did_not_write_is_not_overwritten(ui_client, ui_project):
    (ui_project / "configs").mkdir()
    (ui_project / "configs" / "a.yaml").write_text("model: {name_or_path: mine}\n")
    r = ui_client.post("/new", data=train_form(ui_project, "a"))
    assert r.status_code == 422 and "was not written by this page" in r.text
    assert (ui_project / "configs" / "a.yaml").read_text() == "model: {name_or_path: mine}\n"


def test_starting_from_an_example_and_from_nothing(ui_client, ui_project):
    (ui_project / "examples").mkdir()
    (ui_project / "examples" / "mine.yaml").write_text(
        "model: {name_or_path: some/model}\ndata: {datasets: [{path: data/identity.json}]}\n"
        "train: {learning_rate: 0.0005}\n"
    )
    r = ui_client.get("/new?example=examples/mine.yaml")
    assert 'value="0.0005"' in r.text and 'value="some/model"' in r.text
    assert "examples/mine.yaml" in ui_client.get("/new").text  # offered as a starting point


def test_a_job_records_how_its_command_ended(ui_project):
    done = jobs.start_job(ui_project, "ls", ["ls", "commands"], None)
    failed = jobs.start_job(ui_project, "train", ["train", "missing.yaml"], "runs/x")
    assert wait_job(ui_project, done.id).state == "finished"
    log = jobs.job_log(ui_project, done)
    assert "train" in log and log == log.lstrip()  # the command's output only: the runner adds nothing
    assert "kernels-community" not in log  # nor libraries' import-time notices of its own
    ended = wait_job(ui_project, failed.id)
    assert (
        ended.state == "failed" and ended.exit_code == 2 and "missing.yaml" in jobs.job_log(ui_project, ended)
    )
    assert ended.command == "tuneforge train missing.yaml"


def test_progress_and_time_left_come_from_the_metrics():
    assert progress([])["step"] == 0
    records = [
        {"step": 10, "time": 100.0, "loss": 2.0, "max_steps": 50},
        {"step": 20, "time": 110.0, "loss": 1.5, "max_steps": 50},
        {"step": 20, "time": 111.0, "eval_loss": 1.4},
    ]
    p = progress(records)
    assert p["step"] == 20 and p["max_steps"] == 50 and p["done"] == pytest.approx(0.4)
    assert p["seconds_left"] == 33  # 30 steps left at (111 - 100) / (20 - 10) s a step


def test_the_log_tail_shows_what_a_terminal_shows(tmp_path):
    assert terminal_line(" 10%|#  | 1/10\r 20%|## | 2/10\r") == " 20%|## | 2/10"
    path = tmp_path / "log"
    path.write_text("one\ntwo\npart")
    tail = Tail(path)
    assert tail.lines() == ["one", "two"]  # a partial last line waits
    with path.open("a") as f:
        f.write("ial\n")
    assert tail.lines() == ["partial"] and tail.lines() == []


def _finished_run(folder, losses):
    """A run folder as a finished run leaves it (marker, config, manifest, metrics.jsonl)."""
    import json

    from tuneforge.artifacts.folder import MARKER

    folder.mkdir(parents=True)
    (folder / MARKER).write_text("")
    (folder / "config.yaml").write_text(
        "model: {name_or_path: m}\nstage: {name: sft}\nmethod: {name: lora}\n"
    )
    (folder / "manifest.json").write_text(json.dumps({"stage": "sft", "method": "lora"}))
    lines = [
        json.dumps({"step": i + 1, "loss": x, "time": 100.0 + i, "max_steps": len(losses)})
        for i, x in enumerate(losses)
    ]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_compare_shows_each_runs_numbers_and_the_sweep_leaderboards(ui_client, ui_project):
    import json

    _finished_run(ui_project / "runs" / "sweep" / "lr-1", [2.0, 1.5])
    _finished_run(ui_project / "runs" / "sweep" / "lr-2", [2.0, 1.2])
    board = {
        "metric": "last_train_loss",
        "rows": [{"name": "lr-2", "last_train_loss": 1.2}, {"name": "lr-1", "last_train_loss": 1.5}],
    }
    (ui_project / "runs" / "sweep" / "leaderboard.json").write_text(json.dumps(board))
    page = ui_client.get("/compare?run=sweep/lr-1&run=sweep/lr-2").text
    table = page.split('id="compare-table"')[1].split("</table>")[0]
    assert "sweep/lr-1" in table and "sweep/lr-2" in table and ">1.5<" in table and ">1.2<" in table
    assert "Sweep leaderboard" in page and "ranked by last_train_loss" in page
    assert '["sweep/lr-1", "sweep/lr-2"]' in page  # the chart draws both runs' curves
    assert ui_client.get("/runs/sweep/lr-2/metrics.json").json()[-1]["loss"] == 1.2
    assert "no run folder" in ui_client.get("/compare?run=nope").text


def test_chat_offers_finished_runs_and_puts_two_side_by_side(ui_client, ui_project):
    _finished_run(ui_project / "runs" / "a", [1.0])
    _finished_run(ui_project / "runs" / "b", [1.0])
    page = ui_client.get("/chat?run=a&run=b").text
    assert page.count('class="chatbox"') == 2 and 'data-run="a"' in page and 'data-run="b"' in page
    r = ui_client.post("/chat/stream", data={"run": "../..", "messages": "[]"})
    assert "event: error" in r.text and '"../..: outside the project folder' in r.text
    r = ui_client.post("/chat/stream", data={"run": "a", "messages": "{not json"})
    assert "event: error" in r.text
