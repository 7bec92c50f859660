from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType

import pytest

from bearerguard._token import freeze


def test_freeze_copies_a_flat_object_read_only() -> None:
    source = {"sub": "a", "exp": 1, "ok": True, "ratio": 0.5, "none": None}
    frozen = freeze(source)
    source["sub"] = "changed"
    assert isinstance(frozen, MappingProxyType)
    assert frozen == {"sub": "a", "exp": 1, "ok": True, "ratio": 0.5, "none": None}
    with pytest.raises(TypeError):
        frozen["sub"] = "b"  # type: ignore[index]


def test_freeze_reaches_nested_objects_and_arrays() -> None:
    frozen = freeze({"a": {"b": [1, {"c": [2]}]}, "d": OrderedDict(e=[3])})
    assert frozen["a"]["b"] == (1, MappingProxyType({"c": (2,)}))
    assert isinstance(frozen["a"]["b"][1], MappingProxyType)
    assert frozen["d"]["e"] == (3,)  # a dict subclass is frozen too
    with pytest.raises(TypeError):
        frozen["d"]["e"] = ()
