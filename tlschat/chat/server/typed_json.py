"""Frozen dataclasses to and from JSON-ready values, by their type hints, every value checked and
bounded on the way in. Pure.

A field's JSON name is its own unless its metadata names another (``wire``). A field with a
default is left out while it holds it and read as it when absent, so that an optional field costs
nothing on the wire; a class with a ``kind`` (a ClassVar) carries it as "type". Names a class does
not know are ignored: a newer server's optional field must not make an older one refuse the rest.

The types a field may have: ``str`` (UTF-8, at most ``MAX_TEXT`` bytes), ``int`` (in [0,
MAX_INT]; a JSON true is not one), ``float`` (finite; an integer is read as one), ``bool``,
``X | None``, ``tuple[X, ...]`` (a list of at most ``MAX_ITEMS``, or the field's ``at_most``),
``tuple[X, Y]`` (a list of exactly that many), ``dict[str, X]`` (an object, bounded as a list)
and another such dataclass. A class may refuse a combination of fields in ``__post_init__`` with
a ValueError.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..frames import MAX_FRAME

# Every text in the chat's values came in one frame, or was made by the server from one.
MAX_TEXT = MAX_FRAME


# A list or an object with no bound of its own: more than any one change lists.
MAX_ITEMS = 100_000


MAX_INT = (1 << 63) - 1


T = TypeVar("T")


class MalformedValue(ValueError):
    """JSON that is not the value it should be: the text says where and why."""


def wire(name: str) -> dict[str, Any]:
    """A field's metadata: its JSON name, where that is not a Python name."""
    return {"wire": name}


def at_most(maximum: int) -> dict[str, Any]:
    """A field's metadata: how many items its list or object may hold."""
    return {"items": maximum}


@dataclass(frozen=True)
class _Field:
    name: str
    wire: str
    hint: Any
    has_default: bool
    default: Any
    max_items: int


_FIELDS: dict[type, tuple[_Field, ...]] = {}


def _fields(cls: type) -> tuple[_Field, ...]:
    """A dataclass's fields as JSON sees them (worked out once per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _FIELDS[cls] = tuple(
            _Field(
                name=f.name,
                wire=f.metadata.get("wire", f.name),
                hint=hints[f.name],
                has_default=f.default is not dataclasses.MISSING,
                default=f.default,
                max_items=f.metadata.get("items", MAX_ITEMS),
            )
            for f in dataclasses.fields(cls)
        )
    return found


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready values: objects, lists, strings, numbers, booleans and null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        kind = getattr(type(value), "kind", None)
        if kind is not None:
            out["type"] = kind
        for spec in _fields(type(value)):
            held = getattr(value, spec.name)
            if not (spec.has_default and held == spec.default):
                out[spec.wire] = to_json(held)
        return out
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def from_json(cls: type[T], value: object, where: str = "value") -> T:
    """The ``cls`` that ``value`` (parsed JSON) holds; MalformedValue if it holds none."""
    if not isinstance(value, dict):
        raise MalformedValue(f"{where} must be an object")
    kind = getattr(cls, "kind", None)
    if kind is not None and value.get("type") != kind:
        raise MalformedValue(f"{where} must have the type {kind!r}")
    found: dict[str, Any] = {}
    for spec in _fields(cls):
        if spec.wire in value:
            found[spec.name] = _read(spec.hint, value[spec.wire], spec, f"{where}.{spec.wire}")
        elif not spec.has_default:
            raise MalformedValue(f"{where} has no '{spec.wire}'")
    try:
        return cls(**found)
    except ValueError as error:
        raise MalformedValue(f"{where}: {error}") from None


def _read(hint: Any, value: object, spec: _Field, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is types.UnionType or origin is typing.Union:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return None if value is None else _read(inner, value, spec, where)
    if hint is str:
        return _text(value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise MalformedValue(f"{where} must be true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
            raise MalformedValue(f"{where} must be an integer in [0, {MAX_INT}]")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise MalformedValue(f"{where} must be a number")
        if not math.isfinite(value):
            raise MalformedValue(f"{where} must be a finite number")
        return float(value)
    if origin is tuple:
        return _tuple(args, value, spec, where)
    if origin is dict:
        return _object(args[1], value, spec, where)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json(hint, value, where)
    raise TypeError(f"{where}: no JSON form for {hint!r}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise MalformedValue(f"{where} must be a string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate such as JSON "\ud800"
        raise MalformedValue(f"{where} is not valid Unicode") from None
    if size > MAX_TEXT:
        raise MalformedValue(f"{where} is longer than {MAX_TEXT} bytes")
    return value


def _tuple(args: tuple[Any, ...], value: object, spec: _Field, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise MalformedValue(f"{where} must be a list")
    if len(args) == 2 and args[1] is Ellipsis:
        if len(value) > spec.max_items:
            raise MalformedValue(f"{where} has more than {spec.max_items} items")
        return tuple(_read(args[0], item, spec, f"{where}[{i}]") for i, item in enumerate(value))
    if len(value) != len(args):
        raise MalformedValue(f"{where} must have {len(args)} items")
    return tuple(
        _read(arg, item, spec, f"{where}[{i}]")
        for i, (arg, item) in enumerate(zip(args, value, strict=True))
    )


def _object(hint: Any, value: object, spec: _Field, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedValue(f"{where} must be an object")
    if len(value) > spec.max_items:
        raise MalformedValue(f"{where} has more than {spec.max_items} items")
    return {
        _text(key, f"{where} key"): _read(hint, item, spec, f"{where}[{repr(key)[:40]}]")
        for key, item in value.items()
    }
