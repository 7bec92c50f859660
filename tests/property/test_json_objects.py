"""The strict JSON reader of tokens and proofs (`_b64json.json_object_flat`): its fast path for
flat objects (the dict built in C, duplicates ruled out by counting commas) must decide exactly
as the strict decoder does, for any text, duplicate names, commas and escapes included."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bearerguard._b64json import Malformed, json_object_flat

_NAMES = st.sampled_from(["a", "b", "iss", "a,b", 'c\\"', "\\u002c", "d\\u0061", ","])
_STRINGS = st.sampled_from(["x", "", "x,y", ",", '\\",', "\\u002c", "a\\\\", "{", "[", ":"])
_SCALARS = st.one_of(
    _STRINGS.map(lambda s: f'"{s}"'),
    st.sampled_from(["1", "-0.5", "1e3", "true", "false", "null", "NaN", "Infinity", "1,"]),
)
_SPACE = st.sampled_from(["", "", " ", "\n"])


@st.composite
def objects(draw: st.DrawFn) -> str:
    members = draw(st.lists(st.tuples(_NAMES, _SCALARS, _SPACE), max_size=8))
    body = ",".join(f'{space}"{name}"{space}:{space}{value}' for name, value, space in members)
    text = "{" + body + "}"
    if draw(st.booleans()):  # and some damage: a cut, a stray character
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", ",", "}", '"', "{", " "])) + text[cut:]
    return text


def _strict(text: str) -> Any:
    def pairs(members: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({name for name, _ in members}) != len(members):
            raise ValueError("duplicate")
        return dict(members)

    def constant(name: str) -> Any:
        raise ValueError(name)

    value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


@given(objects())
def test_the_fast_path_decides_as_the_strict_decoder(text: str) -> None:
    try:
        expected = _strict(text)
    except (ValueError, RecursionError):
        expected = None
    try:
        got, _ = json_object_flat(text.encode())
    except Malformed:
        got = None
    assert got == expected, text
