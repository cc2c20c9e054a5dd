"""Strict parsing of JSON-like data into frozen dataclasses, field by field from their type hints.

One walker for every settings file the package reads (a run's config, a task's record, the
analysis settings): an unknown field, or a value its annotation does not admit, is an error
naming where it came from (``source``), the field's dotted path and the value, raised as the
caller's error class. Lists become tuples, integers become floats where a float is wanted,
tables become nested dataclasses; an annotation the walker cannot know (a protocol whose class
is chosen by the data, say) is handed to the caller's ``custom`` builder for it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal

__all__ = ["Custom", "build_dataclass", "coerce_value"]

Custom = Mapping[Any, Callable[[Any, str, str], Any]]
"""Annotation -> ``builder(value, source, name)`` for the annotations the walker leaves to the
caller (``name`` is the field's dotted path)."""


@dataclass(frozen=True)
class _Walk:
    source: str
    error: type[Exception]
    custom: Custom

    def build(self, cls: type, data: Any, prefix: str) -> Any:
        where = prefix.rstrip(".") or "top level"
        if not isinstance(data, dict):
            raise self.error(
                f"{self.source}: {where} must be a table/object, got {type(data).__name__}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise self.error(
                f"{self.source}: unknown field {prefix}{unknown[0]!s} (known: {', '.join(known)})"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {name: self.coerce(hints[name], value, prefix + name)
                  for name, value in data.items()}  # fmt: skip
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as e:
            raise self.error(f"{self.source}: {e}") from None

    def coerce(self, tp: Any, value: Any, name: str) -> Any:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        bad = self.error(
            f"{self.source}: field {name} = {value!r} does not match type {_type_name(tp)}"
        )
        if tp in self.custom:
            return self.custom[tp](value, self.source, name)
        if origin in (typing.Union, types.UnionType):
            for arg in args:
                try:
                    return self.coerce(arg, value, name)
                except self.error:
                    continue
            raise bad
        if tp is type(None):
            if value is None:
                return None
            raise bad
        if origin is Literal:
            if value in args:
                return value
            raise self.error(
                f"{self.source}: field {name} = {value!r}: must be one of {list(args)}"
            )
        if origin is tuple:
            if not isinstance(value, list | tuple):
                raise bad
            if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: any length
                args = (args[0],) * len(value)
            if len(value) != len(args):
                raise bad
            return tuple(self.coerce(a, v, f"{name}[{i}]")
                         for i, (a, v) in enumerate(zip(args, value, strict=True)))  # fmt: skip
        if isinstance(tp, type) and is_dataclass(tp):
            return self.build(tp, value, name + ".")
        if tp is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            raise bad
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise bad
        if tp in (bool, str):
            if isinstance(value, tp):
                return value
            raise bad
        return value


def build_dataclass(
    cls: type,
    data: Any,
    source: str,
    *,
    prefix: str = "",
    error: type[Exception] = ValueError,
    custom: Custom | None = None,
) -> Any:
    """An instance of dataclass ``cls`` from the table ``data``, every field checked against
    its type hint (see the module docstring); ``prefix`` is the table's dotted path in the
    file (``"task."``), ``error`` the exception raised, ``custom`` the caller's builders."""
    return _Walk(source, error, custom or {}).build(cls, data, prefix)


def coerce_value(
    tp: Any,
    value: Any,
    source: str,
    name: str,
    *,
    error: type[Exception] = ValueError,
    custom: Custom | None = None,
) -> Any:
    """``value`` checked against the annotation ``tp`` and converted as a field of
    :func:`build_dataclass` is; ``name`` is its dotted path."""
    return _Walk(source, error, custom or {}).coerce(tp, value, name)


def _type_name(tp: Any) -> str:
    """``int``, ``tuple[str, ...]``, ``int | None``: the annotation as it is written."""
    if typing.get_origin(tp) is None and isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")
