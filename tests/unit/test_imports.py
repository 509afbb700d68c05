"""The package's import structure: no module imports itself back through others, not even through an
import inside a function (those are kept for start-up time only, never to hide a cycle); every module
imports on its own in a fresh process; and the module tree in docs/architecture.md matches the code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tuneforge"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every tuneforge module ``name`` imports, at the top or inside a function (not under
    TYPE_CHECKING); importing a.b.c imports the packages a and a.b too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base, *(f"{base}.{a.name}" for a in child.names)]
            else:
                visit(child)
                continue
            for target in targets:
                parts = target.split(".")
                for i in range(2, len(parts) + 1):
                    prefix = ".".join(parts[:i])
                    if prefix in modules and prefix != name and prefix not in own:
                        found.add(prefix)

    visit(ast.parse(path.read_text()))
    return found


def test_no_module_imports_itself_back():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert len(graph) > 100  # the walk saw the whole package


def test_the_check_finds_a_cycle_hidden_in_a_function(tmp_path, monkeypatch):
    """The cycle test's power: a cycle made only of an import inside a function is found."""
    import tests.unit.test_imports as me

    pkg = tmp_path / "tuneforge"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from tuneforge.b import x\n")
    (pkg / "b.py").write_text("def x():\n    from tuneforge.a import y\n")
    filler = {f"tuneforge.m{i}": pkg / "__init__.py" for i in range(101)}  # past the size check
    monkeypatch.setattr(me, "ROOT", tmp_path)
    monkeypatch.setattr(me, "PACKAGE", pkg)
    real = me._modules
    monkeypatch.setattr(me, "_modules", lambda: {**real(), **filler})
    try:
        me.test_no_module_imports_itself_back()
    except AssertionError as e:
        assert "tuneforge.a -> tuneforge.b -> tuneforge.a" in str(e)
    else:
        raise AssertionError("the cycle was not found")


IMPORT_EACH = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "tuneforge" or m.startswith("tuneforge.")]:
        del sys.modules[loaded]  # each module imported first, as a fresh process would
    try:
        importlib.import_module(name)
    except Exception as e:
        failed.append(f"{name}: {type(e).__name__}: {e}")
print("\\n".join(failed))
"""


def test_every_module_imports_first_in_a_fresh_process():
    names = sorted(n for n in _modules() if n != "tuneforge.__main__")
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, *names], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", out.stdout


def test_the_module_tree_in_the_docs_is_the_code():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("<!-- module tree -->\n```\n", 1)[1].split("```", 1)[0]
    listed = {line.split()[0].rstrip("/") for line in block.splitlines() if line.strip()}
    folders = {
        str(p.parent.relative_to(ROOT)) for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts
    }
    assert folders - listed == set(), "folders missing from docs/architecture.md's module tree"
    assert listed - folders == set(), "docs/architecture.md lists folders that do not exist"
