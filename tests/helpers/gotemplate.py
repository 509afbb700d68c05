"""A subset of Go's text/template, enough to render an Ollama Modelfile TEMPLATE in tests."""

from __future__ import annotations

import re


def render_go(template: str, messages: list[dict], system: str | None) -> str:
    """The subset of Go's text/template that the Modelfile uses ({{ range .Messages }}, {{ if / else
    if eq .Role "x" }}, {{ end }}, {{ .Content }}, {{ .Role }}), with Ollama's rule of putting the
    Modelfile's SYSTEM first when the conversation has no system message."""
    if system is not None and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]
    tokens = [t for t in re.split(r"({{.*?}})", template) if t]
    tree, end = _parse(tokens, 0)
    assert end == len(tokens), "unbalanced template"
    return _eval(tree, messages, None)


def _action(token: str) -> str | None:
    return token[2:-2].strip() if token.startswith("{{") else None


def _parse(tokens: list[str], i: int):
    nodes: list = []
    while i < len(tokens):
        a = _action(tokens[i])
        if a is None:
            nodes.append(tokens[i])
        elif a == "end" or a.startswith("else"):
            return nodes, i
        elif a == "range .Messages":
            body, i = _parse(tokens, i + 1)
            assert _action(tokens[i]) == "end"
            nodes.append(("range", body))
        elif a.startswith("if "):
            branches, cond = [], a[3:]
            while True:
                body, i = _parse(tokens, i + 1)
                branches.append((cond, body))
                a = _action(tokens[i])
                if a == "end":
                    break
                cond = a.removeprefix("else if ") if a.startswith("else if ") else None
            nodes.append(("if", branches))
        elif a in (".Content", ".Role"):
            nodes.append(("var", a[1:].lower()))
        else:
            raise AssertionError(f"unsupported action {a!r}")
        i += 1
    return nodes, i


def _eval(nodes: list, messages: list[dict], scope: dict | None) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif node[0] == "var":
            out.append(scope[node[1]])
        elif node[0] == "range":
            out += [_eval(node[1], messages, m) for m in messages]
        else:
            for cond, body in node[1]:
                if cond is None or _cond(cond, scope):
                    out.append(_eval(body, messages, scope))
                    break
    return "".join(out)


def _cond(expr: str, scope: dict) -> bool:
    m = re.fullmatch(r'eq \.Role "(\w+)"', expr)
    assert m, expr
    return scope["role"] == m.group(1)
