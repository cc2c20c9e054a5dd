"""Config validation, one message format: ``section.field = value: what is allowed``.

Every frozen config checks itself in ``__post_init__`` with
``need = functools.partial(check_field, obj=self, section=..., error=...)`` and then
``need(condition, field, message)``; the error names the field and the value it was given.
"""

from __future__ import annotations


def check_field(
    cond: bool,
    field: str,
    msg: str,
    *,
    obj: object,
    section: str,
    error: type[Exception] = ValueError,
) -> None:
    """Raise ``error("{section}.{field} = {value!r}: {msg}")`` unless ``cond``."""
    if not cond:
        raise error(f"{section}.{field} = {getattr(obj, field)!r}: {msg}")


def is_int(v: object) -> bool:
    """An int that is not a bool (``True`` is not a count)."""
    return isinstance(v, int) and not isinstance(v, bool)
