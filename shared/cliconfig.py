"""Typed command configs: one dataclass per command, its flags built from it (import-light: no numpy).

A command's defaults and help live only in its config dataclass (a default per field, a docstring
under each field). :func:`config_command` turns the dataclass into a typer command: every field of a
scalar type (``str``, ``int``, ``float``, ``bool``, ``Path`` or ``X | None`` of these) becomes a flag
``--field-name`` with the field's default and docstring; nested dataclass fields are flattened
(their fields become flags of their own, unprefixed). A new field is a new flag. Fields of other
types (lists, tuples, dicts) are set from a YAML file given with ``--config``; flags given on the
command line override the file, which overrides the dataclass defaults.

:func:`config_from_dict` builds the dataclass tree from a nested dict and refuses unknown keys by
name (``UsageError``, exit 2); the training config uses it too.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from geovr.shared.errors import UsageError

SCALARS = (str, int, float, bool, Path)
"""Field types that become flags."""


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of a dataclass (the string literal under each field), first paragraph, one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for prev, node in zip(body, body[1:], strict=False):
            if (isinstance(prev, ast.AnnAssign) and isinstance(prev.target, ast.Name) and isinstance(node, ast.Expr)
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                text = inspect.cleandoc(node.value.value).split("\n\n")[0].replace("``", "")
                docs[prev.target.id] = " ".join(text.split())
    return docs


def _scalar(tp: Any) -> Any:
    """The flag type of a field type, or None when the field is YAML-only."""
    if tp in SCALARS:
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and args[0] in SCALARS and args[0] is not bool:
            return typing.Optional[args[0]]  # noqa: UP045  (typer needs the typing form)
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None  # a required field: the command checks it (it may be optional for some modes)


@dataclasses.dataclass(frozen=True)
class Flag:
    """One command-line flag of a config field."""

    path: tuple[str, ...]
    """Field path in the config tree, e.g. ``("sampling", "fps")``."""
    param: str
    """Python parameter name of the command (unique)."""
    decls: tuple[str, ...]
    """The flag and its aliases, e.g. ``("--num-frames", "--frames")``."""
    annotation: Any
    """Flag type."""
    default: Any
    """Default shown in ``--help`` (the dataclass default)."""
    help: str
    """Help text (the field docstring)."""


def flags_of(cls: type, exclude: tuple[str, ...] = (), rename: dict[str, str | tuple[str, ...]] | None = None,
             prefix: tuple[str, ...] = ()) -> list[Flag]:
    """The flags of ``cls`` (dotted paths in ``exclude`` are left out; ``rename`` maps a dotted path to a flag or to a flag and its
    aliases)."""
    rename = rename or {}
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out: list[Flag] = []
    for f in dataclasses.fields(cls):
        path = (*prefix, f.name)
        dotted = ".".join(path)
        if dotted in exclude:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += flags_of(tp, exclude, rename, path)
            continue
        ann = _scalar(tp)
        if ann is None:
            continue
        named = rename.get(dotted, "--" + f.name.replace("_", "-"))
        decls = (named,) if isinstance(named, str) else tuple(named)
        if ann is bool and "/" not in decls[0]:
            decls = (f"{decls[0]}/--no-{decls[0][2:]}", *decls[1:])
        out.append(Flag(path, "__".join(path), decls, ann, _default(f), docs.get(f.name, "")))
    return out


def config_from_dict(cls: type, d: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys and bad values are a ``UsageError``."""
    if not isinstance(d, dict):
        raise UsageError(f"{where}: expected a mapping, got {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in d.items():
        if dataclasses.is_dataclass(hints[k]):  # a section: model=3 or run=null is a mistake
            kwargs[k] = config_from_dict(hints[k], v, f"{where}.{k}")
        else:
            kwargs[k] = _checked(hints[k], v, f"{where}.{k}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: {exc}") from exc


def _checked(tp: Any, v: Any, where: str) -> Any:
    """``v`` as a value of field type ``tp`` when that is a scalar type (YAML reads ``1e-2`` as a string, so a
    float field accepts numeric strings); a value of the wrong type is a ``UsageError``."""
    base = _scalar(tp)
    if v is None and tp in SCALARS:  # ``model.model=`` (an empty override) for a field that cannot be unset
        raise UsageError(f"{where}: expected {tp.__name__}, got an empty value")
    if base is None or v is None:
        args = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) in (
            typing.Union, types.UnionType) else [tp]
        shape = (typing.get_origin(args[0]) or args[0]) if len(args) == 1 else None
        if shape in (list, dict) and v is not None and not isinstance(v, shape):  # e.g. data.stores=PATH, not [PATH]
            raise UsageError(f"{where}: expected a {'list' if shape is list else 'mapping'}, got {v!r}")
        item = typing.get_args(args[0]) if shape is list else ()
        if v is not None and len(item) == 1 and item[0] in SCALARS:  # list[str]: data.stores=[[a]] or [3]
            return [_checked(item[0], x, f"{where}[{i}]") for i, x in enumerate(v)]
        return v
    base = typing.get_args(base)[0] if typing.get_origin(base) is typing.Union else base
    if base is float and isinstance(v, (int, float, str)) and not isinstance(v, bool):
        try:
            return float(v)
        except ValueError:
            pass
    elif base is int and isinstance(v, int) and not isinstance(v, bool) or base is bool and isinstance(v, bool):
        return v
    elif base in (str, Path) and isinstance(v, (str, Path)):
        return base(v)
    raise UsageError(f"{where}: expected {base.__name__}, got {v!r}")


def _set(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict; a missing or malformed file is a ``UsageError``."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such config file")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict):
        raise UsageError(f"{p}: expected a mapping of config keys")
    return raw


def config_command(cls: type, body: Callable[..., Any], *, exclude: tuple[str, ...] = (),
                   rename: dict[str, str | tuple[str, ...]] | None = None, extra: list[inspect.Parameter] | None = None,
                   yaml_option: bool = True) -> Callable[..., Any]:
    """A typer command whose flags are the fields of ``cls``; it calls ``body(cfg, **extra_values)``.

    ``extra`` are command-only parameters (modes such as ``--plan``), declared like typer parameters
    (``inspect.Parameter(name, KEYWORD_ONLY, default=typer.Option(...), annotation=...)``). Required
    fields (no default) arrive as None when not given; ``body`` checks them.
    """
    import typer

    flags = flags_of(cls, exclude, rename)
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    params += [inspect.Parameter(fl.param, inspect.Parameter.KEYWORD_ONLY, annotation=fl.annotation,
                                default=typer.Option(fl.default, *fl.decls, help=fl.help)) for fl in flags]
    if yaml_option:
        params.append(inspect.Parameter(
            "config_file", inspect.Parameter.KEYWORD_ONLY, annotation=typing.Optional[Path],  # noqa: UP045
            default=typer.Option(None, "--config", help="YAML file of config fields (nested sections as "
                                 "mappings); flags given on the command line override it.")))
    params += extra or []

    def command(ctx: typer.Context, **values: Any) -> Any:
        raw: dict[str, Any] = read_yaml(values.pop("config_file")) if values.get("config_file") else {}
        values.pop("config_file", None)
        for fl in flags:
            v = values.pop(fl.param)
            source = ctx.get_parameter_source(fl.param)
            given = source is not None and source.name != "DEFAULT"
            in_file = functools.reduce(lambda d, k: d.get(k, {}) if isinstance(d, dict) else {}, fl.path[:-1], raw)
            if given or not (isinstance(in_file, dict) and fl.path[-1] in in_file):
                if v is None and fl.default is None and not given:
                    continue  # required field left unset: the dataclass / body reports it
                _set(raw, fl.path, v)
        return body(raw, **values)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = body.__doc__
    command.__name__ = body.__name__
    return command
