"""Checks of configuration values that every constructor shares: what counts as a list of strings,
a list of claim names, a duration.

A `str` is iterable, so a bare string given where a list is meant silently becomes its
characters: `public_paths="/health"` would make `/` public, `scope_claims="roles"` would read
the claims `r`, `o`, `l`, `e`, `s`. Every sequence-of-strings parameter goes through `strings()`,
which refuses a bare string (and bytes, which iterate as numbers) with a `ConfigurationError`
naming the parameter, unless the parameter takes one value on its own (`one=True`, e.g.
`audience`). Run at construction only, never per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from ._errors import ConfigurationError

_TEXT = (str, bytes, bytearray, memoryview)


def strings(
    value: object, name: str, *, owner: str | None = None, one: bool = False
) -> tuple[str, ...]:
    """`value` as a tuple of non-empty strings, in order; `ConfigurationError` naming `name`.

    A bare `str` is accepted as the only item when `one` is set, and refused otherwise, as are
    bytes-like values, non-iterables, and items that are not non-empty `str`. `owner` prefixes
    the message (an issuer, an introspection endpoint). Emptiness of the whole is the caller's
    rule: some parameters may be empty, others not.
    """
    items: tuple[object, ...]
    if type(value) is tuple:  # the usual case (`*args`, defaults): no ABC check, no copy
        items = value
    elif one and isinstance(value, str):
        items = (value,)
    elif isinstance(value, _TEXT) or not isinstance(value, Iterable):
        kind = type(value).__name__
        hint = f" (for one value write [{value!r}])" if isinstance(value, str) else ""
        expected = "a string or a list of strings" if one else "a list of strings"
        raise ConfigurationError(
            f"{_at(owner)}{name} must be {expected}, not {kind}{hint}", field=name
        )
    else:
        items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ConfigurationError(
                f"{_at(owner)}{name} must hold non-empty strings, not {item!r}", field=name
            )
    return items  # type: ignore[return-value]  # every item was checked above


def claim_names(value: object, name: str, owner: str) -> tuple[str, ...]:
    """A non-empty tuple of claim names (see `strings`); `ConfigurationError` naming `name`."""
    names = strings(value, name, owner=owner)
    if not names:
        raise ConfigurationError(f"{owner}: {name} must name at least one claim", field=name)
    return names


def seconds(value: float | timedelta | None, name: str) -> float | None:
    """A duration in seconds from a number or a timedelta; `ConfigurationError` if negative."""
    if value is None:
        return None
    result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not result >= 0:  # also refuses NaN
        raise ConfigurationError(
            f"{name} must be a non-negative duration, got {value!r}", field=name
        )
    return result


def _at(owner: str | None) -> str:
    return f"{owner}: " if owner else ""
