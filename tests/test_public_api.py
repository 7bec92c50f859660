"""The public surface is exactly the facade's `__all__`; every export presents as `bearerguard`."""

from __future__ import annotations

import types

import bearerguard


def test_all_is_sorted_and_complete() -> None:
    assert bearerguard.__all__ == sorted(bearerguard.__all__)
    public = {
        name
        for name, value in vars(bearerguard).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(bearerguard.__all__) - {"__version__"}


def test_exported_classes_belong_to_the_facade() -> None:
    for name in bearerguard.__all__:
        obj = getattr(bearerguard, name)
        if isinstance(obj, type):
            assert obj.__module__ == "bearerguard", name


def test_type_hints_of_exported_classes_resolve() -> None:
    # Pydantic, FastAPI and dataclass tooling call typing.get_type_hints on what they are given;
    # it reads annotations in `cls.__module__`, which the facade rewrites to "bearerguard".
    import typing

    for name in bearerguard.__all__:
        obj = getattr(bearerguard, name)
        if isinstance(obj, type):
            typing.get_type_hints(obj)  # raises NameError for an annotation it cannot resolve
