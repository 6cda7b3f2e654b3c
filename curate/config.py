"""YAML at the edge: build frozen config dataclasses from plain mappings, recursively and strictly.

Any dataclass works (new fields a stage adds need no change here): nested dataclasses come from nested
mappings, tuples from lists, optional fields accept null. An unknown key is a one-line CurateError that
names the key and lists the valid ones; so is a missing required field or a value of the wrong type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from curate.errors import CurateError

C = TypeVar("C")
_MISSING = dataclasses.MISSING


def from_mapping(cls: type[C], data: Mapping[str, Any] | None, where: str = "") -> C:
    """An instance of dataclass `cls` from `data` (keys are field names); `where` prefixes error messages."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise CurateError(f"{where or cls.__name__}: expected a mapping of {cls.__name__} fields, "
                          f"got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CurateError(f"{_at(where, unknown[0])}: unknown key for {cls.__name__}; "
                          f"valid keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], _at(where, name))
        elif f.default is _MISSING and f.default_factory is _MISSING:
            raise CurateError(f"{_at(where, name)}: required key missing for {cls.__name__}")
    return cls(**kwargs)


def to_mapping(obj: Any) -> Any:
    """The inverse of `from_mapping`: plain dicts and lists, ready for yaml.safe_dump or json."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


def load_yaml(path: str) -> dict[str, Any]:
    """A YAML file (local path or fsspec URL) whose top level is a mapping."""
    import yaml

    from curate.io import fs

    if not fs.exists(path):
        raise CurateError(f"config file not found: {path}")
    tfs, p = fs.url_to_fs(path)
    try:
        with tfs.open(p, "rb") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(f"{path}: not valid YAML: {first}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CurateError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except CurateError as exc:
                errors.append(str(exc))
        raise CurateError(errors[0] if errors else f"{where}: null is not allowed")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            value = [value]  # a single string for a tuple of strings: a one-element list
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise CurateError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))) \
            if args else tuple(value)
    if origin in (list, dict) or tp in (list, dict):
        want = origin or tp
        if not isinstance(value, want):
            raise CurateError(f"{where}: expected a {want.__name__}, got {value!r}")
        return value
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise CurateError(f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(tp)))}")
        return value
    return _scalar(tp, value, where)


def _scalar(tp: Any, value: Any, where: str) -> Any:
    if value is None:
        raise CurateError(f"{where}: null is not allowed here")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise CurateError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, (float, str)) and not isinstance(value, bool):
            number = _number(value, where)
            if float(number).is_integer():
                return int(number)
        raise CurateError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise CurateError(f"{where}: expected a number, got {value!r}")
        return float(_number(value, where))
    if tp is str:
        if isinstance(value, str):
            return value
        raise CurateError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        try:
            return tp(value)
        except Exception as exc:
            raise CurateError(f"{where}: cannot make a {tp.__name__} from {value!r}") from exc
    return value


def _number(value: Any, where: str) -> float | int:
    """YAML 1.1 reads `12.8e9` as a string; accept numeric strings for number fields."""
    if isinstance(value, (int, float)):
        return value
    try:
        return float(str(value).replace("_", ""))
    except ValueError as exc:
        raise CurateError(f"{where}: expected a number, got {value!r}") from exc
