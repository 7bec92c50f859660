from __future__ import annotations

import dataclasses
from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest

from bearerguard import AccessToken
from bearerguard._token import MAX_JSON_DEPTH, freeze, issued, with_scopes


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


def _fields() -> dict[str, Any]:
    return {
        "issuer": "https://idp.example.test",
        "subject": "client-1",
        "client_id": "client-1",
        "scopes": frozenset({"orders.read"}),
        "claims": freeze({"sub": "client-1", "scope": "orders.read"}),
        "expires_at": 1700000000.0,
        "source": "jwt",
    }


def test_issued_builds_the_same_access_token_as_its_constructor() -> None:
    # `issued` sets the fields at once: it must name every field, in order, and nothing else.
    assert [f.name for f in dataclasses.fields(AccessToken)] == list(_fields())
    fields = _fields()
    built, constructed = issued(**fields), AccessToken(**fields)
    assert type(built) is AccessToken
    assert built == constructed
    assert all(getattr(built, name) is value for name, value in fields.items())
    assert all(getattr(constructed, name) is value for name, value in fields.items())
    assert repr(built) == repr(constructed)


def test_an_issued_token_is_immutable_and_replace_works() -> None:
    token = issued(**_fields())
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.scopes = frozenset()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del token.issuer
    changed = dataclasses.replace(token, scopes=frozenset({"a"}))
    assert changed.scopes == {"a"} and token.scopes == {"orders.read"}
    assert with_scopes(token, frozenset({"a"})) == changed
    assert token.scopes == {"orders.read"}


def test_freeze_reads_json_as_deep_as_the_parser_accepts_and_no_deeper() -> None:
    value: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        value = [value]
    frozen = freeze({"a": value})  # the outermost object counts 1, as in the parser
    for _ in range(MAX_JSON_DEPTH):  # 1 + 63 containers: the innermost holds the 1
        frozen = frozen["a"] if isinstance(frozen, MappingProxyType) else frozen[0]
    assert frozen == 1
    with pytest.raises(ValueError, match="nested more than 64 deep"):
        freeze({"a": [value]})
    with pytest.raises(ValueError, match="nested more than 64 deep"):
        freeze({"a": {"b": value}})
