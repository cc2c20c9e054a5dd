"""The strict dataclass builder every settings file goes through: known answers on small
dataclasses, every error naming the source, the field's path and the value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mbc_interp.core.strict import build_dataclass, coerce_value


class Bad(ValueError):
    pass


@dataclass(frozen=True)
class Inner:
    every: int = 1
    rate: float | None = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    pair: tuple[float, float] = (0.0, 1.0)
    kinds: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.inner.every > 10:
            raise ValueError("inner.every: must be <= 10")


def test_a_table_becomes_the_dataclass_with_values_converted():
    got = build_dataclass(Outer, {"pair": [1, 2], "kinds": ["p", "q"], "inner": {"rate": 3}}, "f")
    assert got == Outer(pair=(1.0, 2.0), kinds=("p", "q"), inner=Inner(rate=3.0))
    assert isinstance(got.pair[0], float) and got.inner.rate == 3.0
    assert build_dataclass(Outer, {"inner": {"rate": None}}, "f").inner.rate is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nme": "y"}, "f: unknown field nme (known: name, mode, pair, kinds, inner)"),
        ({"inner": {"evry": 2}}, "f: unknown field inner.evry"),
        ({"inner": 3}, "f: inner must be a table/object, got int"),
        ({"mode": "c"}, "f: field mode = 'c': must be one of ['a', 'b']"),
        ({"pair": [1]}, "f: field pair = [1] does not match type tuple[float, float]"),
        ({"kinds": ["p", 3]}, "f: field kinds[1] = 3 does not match type str"),
        ({"inner": {"every": True}}, "f: field inner.every = True does not match type int"),
        ({"inner": {"rate": "x"}}, "f: field inner.rate = 'x' does not match type float | None"),
        ({"inner": {"every": 11}}, "f: inner.every: must be <= 10"),
    ],
)
def test_errors_name_the_source_the_field_and_the_value(data, message):
    with pytest.raises(Bad) as e:
        build_dataclass(Outer, data, "f", error=Bad)
    assert str(e.value).startswith(message)


def test_a_custom_builder_takes_the_annotations_it_is_given():
    def upper(value, source, name):
        return f"{source}:{name}:{value}".upper()

    got = build_dataclass(Outer, {"name": "y"}, "f", prefix="top.", custom={str: upper})
    assert got.name == "F:TOP.NAME:Y"
    assert coerce_value(tuple[int, ...], [1, 2], "f", "xs") == (1, 2)
