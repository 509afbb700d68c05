"""What a command shows (tuneforge.console): tuneforge's lines and real problems on the console, known
noise and other libraries' notices only in the log file, everything with --verbose; and a session
leaves the process's logging as it found it."""

from __future__ import annotations

import logging
import warnings

import pytest

from tuneforge import console

NOISY_WARNING = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
NOISY_LOG = "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'."


def _emit_everything() -> None:
    logging.getLogger("tuneforge").info("data: 8 samples")
    logging.getLogger("tuneforge.models.wrap").info("trainable params: 1 of 2")
    logging.getLogger("somelib").info("somelib notice")
    logging.getLogger("somelib").warning("somelib: a real problem")
    logging.getLogger("bitsandbytes.backends.cpu.ops").warning(NOISY_LOG)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        path = "/x/site-packages/transformers/modeling_utils.py"
        warnings.warn_explicit(NOISY_WARNING, FutureWarning, path, 3303)
        warnings.warn_explicit("`foo` is deprecated", FutureWarning, "/x/site-packages/other/mod.py", 7)


@pytest.mark.parametrize("verbose", [False, True])
def test_the_console_shows_tuneforge_and_real_problems_the_log_keeps_all(
    verbose, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path))
    with console.session("train", verbose, ["train", "c.yaml"]):
        _emit_everything()
    shown = capsys.readouterr().err.splitlines()
    always = ["data: 8 samples", "trainable params: 1 of 2", "somelib: a real problem"]
    assert set(always) <= set(shown)
    assert any("FutureWarning: `foo` is deprecated" in line for line in shown)  # not a known one: shown
    hidden = ["somelib notice", NOISY_LOG, NOISY_WARNING]
    for text in hidden:
        assert any(text in line for line in shown) == verbose, text
    log = (tmp_path / "logs" / "train.log").read_text()
    assert log.startswith("== ") and "tuneforge train c.yaml" in log.splitlines()[0]
    for text in [*always, *hidden]:
        assert text in log, text


def test_a_run_folder_gets_the_log_and_keeps_earlier_sessions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    run.mkdir()
    for attempt in ("first", "second"):
        with console.session("train", False, ["train", attempt]):
            logging.getLogger("somelib").info(f"{attempt} session")
            console.keep_log_in(run)
    log = (run / console.LOG_NAME).read_text()
    assert log.index("first session") < log.index("second session")  # a resumed run appends
    assert not (tmp_path / "cache" / "logs").exists()
    with console.session("train", False, ["train", "--help"]):
        logging.getLogger("tuneforge").info("help asked")
    assert not (tmp_path / "cache" / "logs").exists()  # help leaves the verb's last log alone


def test_a_session_leaves_logging_and_warnings_as_it_found_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path))
    root = logging.getLogger()
    before = (root.level, list(root.handlers), warnings.showwarning)
    with console.session("chat", False, ["chat"]):
        assert root.level == logging.INFO and len(root.handlers) == len(before[1]) + 2
    assert (root.level, list(root.handlers), warnings.showwarning) == before


def test_quiet_libraries_routes_transformers_and_hides_their_loading_bars(monkeypatch, tmp_path, capsys):
    import datasets
    import transformers

    tf = transformers.utils.logging
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.delenv("HF_DATASETS_DISABLE_PROGRESS_BARS", raising=False)
    lib = logging.getLogger("transformers")
    before = (list(lib.handlers), lib.propagate, lib.level, tf.is_progress_bar_enabled())
    with console.session("train", False, ["train"]):
        console.quiet_libraries()
        assert not tf.is_progress_bar_enabled() and datasets.utils.are_progress_bars_disabled()
        tf.get_logger("transformers.modeling_utils").warning("a transformers warning")
        tf.get_logger("transformers.modeling_utils").info("a transformers notice")
    err = capsys.readouterr().err
    assert err.count("a transformers warning") == 1 and "a transformers notice" not in err
    assert (list(lib.handlers), lib.propagate, lib.level, tf.is_progress_bar_enabled()) == before
    assert not datasets.utils.are_progress_bars_disabled()


def test_every_known_noise_says_why():
    for noise in console.NOISE:
        assert noise.logger and noise.pattern and len(noise.why) > 30
