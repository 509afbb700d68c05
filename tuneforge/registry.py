"""One registry mechanism for methods, stages, formats, templates, sample kinds, eval tasks and commands.

A registry is bound to a package (e.g. ``tuneforge.data.formats``); every module in that package
is an entry whose key is the module's file name. Third-party entries come from the Python
entry-point group ``tuneforge.<kind>`` (name -> module). Misses raise a ConfigError that lists the
closest names.

Each registry has an interface: a subclass of `Interface` whose body lists what an entry module
defines, the way a Protocol lists members::

    class MethodModule(Interface):
        Config: type[MethodConfig]  # a required value, checked against its type
        DESCRIPTION: str

        def apply(model, cfg):  # a required function, checked to accept these arguments
            ...

        @optional
        def callbacks(cfg, model) -> list:  # an optional hook: `Registry.hook` gives None without it
            ...

        helpers = ()  # public names some entries define for other modules to import

    METHODS = Registry("methods", "tuneforge.methods", interface=MethodModule)

An annotated name with a value is an optional value (``SETUP_LOGGING: bool = True`` in
`tuneforge.commands.CommandModule`): `Registry.hook` gives that value for an entry without it.
A class rather than a `typing.Protocol`: a Protocol has no optional members, and isinstance()
against one only tests that attributes exist. Optional names are read with `Registry.hook`, which
refuses a name the interface lacks, so neither the module nor the caller can misspell a hook.

Loading is strict where a mistake is certain: the registry refuses (ConfigError) an entry that
lacks a required name, holds one of the wrong type or signature, or defines a public name that
is not in the interface but close to one that is (``def callback`` in a method: "did you mean
'callbacks'?"), so a misspelt hook fails instead of vanishing. Any other public name an entry
defines (see `defined_names`) loads, so a third-party helper does not stop a run, but the
contract suite (tests/contract/test_registry_interfaces.py) rejects it in ours: it must become
private (``_name``) or be listed in the interface's ``helpers``.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import pkgutil
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType, UnionType
from typing import Any

from tuneforge.errors import ConfigError

# class attributes of an interface that are settings of it, not names of its modules
_RESERVED = frozenset({"helpers", "together"})
# how close a stray name must be to an interface name to be taken for a misspelling of it; case
# counts, since a function ``required`` is no misspelling of a constant ``REQUIRED``
_MISSPELT = 0.8


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}?"
    return f"choose one of: {', '.join(sorted(choices))}"


def _guess(name: str, names: list[str]) -> str:
    """A did-you-mean among interface names, case aside (``limit`` -> ``LIMIT``); empty without one."""
    folded = {n.casefold(): n for n in names}
    close = [folded[c] for c in difflib.get_close_matches(name.casefold(), list(folded), n=2, cutoff=0.5)]
    return f"did you mean {' or '.join(map(repr, close))}?" if close else ""


def optional(fn: Callable) -> Callable:
    """Mark a function of an `Interface` body as an optional hook."""
    fn.__interface_optional__ = True  # type: ignore[attr-defined]
    return fn


@dataclass(frozen=True)
class Member:
    """One name of an interface: a value (``hint`` is its annotation) or a function (``params`` are
    the positional arguments the caller passes)."""

    name: str
    required: bool
    default: Any = None
    hint: Any = None
    params: tuple[str, ...] | None = None
    owner: type | None = None


class Interface:
    """What the modules of one registry define; subclass it with annotations and functions (above)."""

    helpers: tuple[str, ...] = ()  # public names some entries define for other modules; never read here
    together: tuple[tuple[str, ...], ...] = ()  # groups of optional names a module defines all or none of
    _members: dict[str, Member] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        members: dict[str, Member] = {}
        for base in reversed(cls.__bases__):
            members.update(getattr(base, "_members", {}))
        body = dict(vars(cls))
        for name, hint in body.get("__annotations__", {}).items():
            if not name.startswith("_") and name not in _RESERVED:
                members[name] = Member(name, name not in body, body.get(name), hint, owner=cls)
        for name, value in body.items():
            if inspect.isfunction(value) and not name.startswith("_") and name not in _RESERVED:
                required = not getattr(value, "__interface_optional__", False)
                members[name] = Member(name, required, params=_positional(value))
        for name in members.keys() & body.keys():
            delattr(cls, name)  # the body only declares: a member may share a name with the API below
        cls._members = members

    @classmethod
    def names(cls) -> list[str]:
        return list(cls._members)

    @classmethod
    def required(cls) -> list[str]:
        return [n for n, m in cls._members.items() if m.required]

    @classmethod
    def hook(cls, module: object, name: str) -> Any:
        """``module``'s ``name`` (an interface name), or the interface's default where it has none."""
        member = cls._members.get(name)
        if member is None:
            guess = _guess(name, cls.names()) or f"its names are {', '.join(cls.names())}"
            raise LookupError(f"{name!r} is not a name of {cls.__qualname__}: {guess}")
        return getattr(module, name) if member.required else getattr(module, name, member.default)

    @classmethod
    def problems(cls, module: ModuleType) -> list[str]:
        """Every way ``module`` departs from the interface, stray names included (the contract
        suite asserts there are none)."""
        return cls._misfits(module) + [cls._stray(n) for n in cls.stray_names(module)]

    @classmethod
    def check(cls, module: ModuleType, what: str) -> None:
        """Refuse ``module`` (``what`` names it) for every problem but a stray name that resembles
        no interface name."""
        names = cls.names()
        misspelt = [
            cls._stray(n)
            for n in cls.stray_names(module)
            if difflib.get_close_matches(n, names, n=1, cutoff=_MISSPELT)
        ]
        refused = cls._misfits(module) + misspelt
        if refused:
            raise ConfigError(
                f"{what} does not fit {cls.__module__}.{cls.__qualname__}: " + "; ".join(refused)
            )

    @classmethod
    def stray_names(cls, module: ModuleType) -> list[str]:
        """The public names ``module`` defines that are neither interface names nor helpers."""
        known = set(cls._members) | set(cls.helpers)
        return [n for n in defined_names(module) if n not in known]

    @classmethod
    def _misfits(cls, module: ModuleType) -> list[str]:
        found = [f"lacks {n!r}" for n in cls.required() if not hasattr(module, n)]
        for name, member in cls._members.items():
            if hasattr(module, name):
                found += _member_misfits(member, getattr(module, name))
        for group in cls.together:
            present = [n for n in group if hasattr(module, n)]
            if present and len(present) < len(group):
                absent = ", ".join(repr(n) for n in group if n not in present)
                found.append(f"defines {', '.join(map(repr, present))} but not {absent} (they go together)")
        return found

    @classmethod
    def _stray(cls, name: str) -> str:
        guess = _guess(name, cls.names())
        guess = f" ({guess})" if guess else ""
        return (
            f"defines {name!r}, not a name of {cls.__qualname__}{guess}; if it is a helper, name it "
            f"'_{name}' or list it in {cls.__qualname__}.helpers"
        )


def defined_names(module: ModuleType) -> list[str]:
    """The public names ``module`` itself defines, which its interface must account for: functions
    and classes defined in it or bound under a name of their own (``load_kwargs = no_load_kwargs``),
    and UPPER_CASE constants. Names its source imports under their own name, modules and other
    lower-case values (a logger, a type alias) are not its own."""
    imported: set[str] | None = None
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, ModuleType):
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            own = value.__module__ == module.__name__ or value.__name__ != name
        else:
            own = name.isupper() and getattr(typing, name, None) is not value
        if own:
            imported = _imported_names(module) if imported is None else imported
            if name not in imported:
                names.append(name)
    return names


def _imported_names(module: ModuleType) -> set[str]:
    """Names ``module``'s own source binds by importing them under their own name (none without source)."""
    try:
        body = ast.parse(inspect.getsource(module)).body
    except (OSError, TypeError, SyntaxError):
        return set()
    names: set[str] = set()
    while body:
        node = body.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.name.split(".")[0] for a in node.names if a.asname in (None, a.name))
        elif isinstance(node, (ast.If, ast.Try)):
            body += node.body + node.orelse + getattr(node, "finalbody", [])
            body += [s for h in getattr(node, "handlers", []) for s in h.body]
    return names


def _positional(fn: Callable) -> tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.kind in kinds and p.default is p.empty)


def _member_misfits(member: Member, value: Any) -> list[str]:
    if member.params is not None:
        if not callable(value):
            return [f"{member.name!r} is a {type(value).__name__}, not a function"]
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):  # a builtin without a signature: trust it
            return []
        try:
            signature.bind(*member.params)
        except TypeError:
            call = f"{member.name}({', '.join(member.params)})"
            return [f"{member.name}{signature} cannot be called as {call}"]
        return []
    hint = _resolve(member)
    if hint is not None and not _fits(value, hint):
        return [f"{member.name!r} is {value!r:.60}, not {_describe(hint)}"]
    return []


def _resolve(member: Member) -> Any:
    """The member's annotation as an object (None where it names something not importable here)."""
    if not isinstance(member.hint, str):
        return member.hint
    namespace = vars(sys.modules[member.owner.__module__]) if member.owner else {}
    try:
        return eval(member.hint, dict(namespace))  # our own interface source, under postponed evaluation
    except Exception:
        return None


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, UnionType):
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is type:
        return isinstance(value, type) and (
            not args or not isinstance(args[0], type) or issubclass(value, args[0])
        )
    if hint is Callable or origin is Callable:
        return callable(value)
    cls = origin or hint
    return isinstance(value, cls) if isinstance(cls, type) else True


def _describe(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


class Registry:
    """Entries of one kind, keyed by the name users write, each checked against ``interface``."""

    def __init__(self, kind: str, package: str, interface: type[Interface]):
        self.kind = kind
        self.package = package
        self.interface = interface
        self._entries: dict[str, ModuleType] | None = None

    def _load(self) -> dict[str, ModuleType]:
        if self._entries is None:
            entries: dict[str, ModuleType] = {}
            pkg = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if info.name.startswith("_"):
                    continue
                entries[info.name] = self._checked(
                    importlib.import_module(f"{self.package}.{info.name}"), f"{self.kind} {info.name!r}"
                )
            for ep in entry_points(group=f"tuneforge.{self.kind}"):
                source = f"package {ep.dist.name if ep.dist else '?'}"
                if ep.name in entries:
                    raise ConfigError(
                        f"{self.kind} {ep.name!r} from {source} clashes with a built-in entry of the same "
                        "name; rename the entry point"
                    )
                entries[ep.name] = self._checked(ep.load(), f"{self.kind} {ep.name!r} from {source}")
            self._entries = entries
        return self._entries

    def _checked(self, module: ModuleType, what: str) -> ModuleType:
        self.interface.check(module, f"{what} ({module.__name__})")
        return module

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> ModuleType:
        entries = self._load()
        if name not in entries:
            raise ConfigError(f"unknown {self.kind} {name!r}: {did_you_mean(name, list(entries))}")
        return entries[name]

    def hook(self, entry: ModuleType | str, name: str) -> Any:
        """An entry's (a module or its name) interface name ``name``, or the interface's default
        (None for a hook) where the entry does not define it."""
        return self.interface.hook(self.get(entry) if isinstance(entry, str) else entry, name)

    def modules(self) -> list[ModuleType]:
        entries = self._load()
        return [entries[n] for n in sorted(entries)]

    def __contains__(self, name: str) -> bool:
        return name in self._load()
