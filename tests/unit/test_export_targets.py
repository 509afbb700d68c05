"""An export never replaces what a user keeps: an existing folder, GGUF path or Modelfile is replaced
only when it is an earlier export of the same kind, and the refusal comes before any work."""

from __future__ import annotations

import pytest

from tests.helpers.runs import run_cli
from tuneforge.errors import ConfigError
from tuneforge.export.targets import EXPORT_MARK, MODELFILE_HEAD, check_file, check_folder


def test_a_folder_of_documents_is_never_replaced(tmp_path, capsys):
    docs = tmp_path / "thesis"
    docs.mkdir()
    (docs / "chapter1.tex").write_text("years of work")
    code, _, err = run_cli(capsys, "export", str(tmp_path / "no-run"), "--merge", str(docs))
    assert code == 2 and err.count("\n") == 1 and "not a tuneforge export" in err, err
    assert (docs / "chapter1.tex").read_text() == "years of work"


def test_rules_for_folders_and_files(tmp_path):
    check_folder(tmp_path / "new", "--merge")  # free
    (tmp_path / "empty").mkdir()
    check_folder(tmp_path / "empty", "--merge")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / EXPORT_MARK).write_text("{}")
    (earlier / "model.safetensors").write_text("x")
    check_folder(earlier, "--merge")  # an earlier export: replaced
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_folder(tmp_path / "a-file", "--merge")

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    check_file(gguf, "--gguf", "gguf")
    other = tmp_path / "notes.gguf"
    other.write_text("my notes")
    with pytest.raises(ConfigError, match="not an earlier export"):
        check_file(other, "--gguf", "gguf")
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(MODELFILE_HEAD + "; create the model with:\nFROM ./m.gguf\n")
    check_file(modelfile, "--ollama", "modelfile")
    modelfile.write_text("FROM llama3\n# my own\n")
    with pytest.raises(ConfigError, match="not an earlier export"):
        check_file(modelfile, "--ollama", "modelfile")
