"""Hypothesis strategies for hostile input: JSON *text* (not values), headers, tokens, paths.

JSON is generated as text so that it can hold what no Python value serialises to: duplicate
member names, NaN and Infinity, integers past the interpreter's conversion limit, nesting deeper
than any stack, lone surrogates, invalid UTF-8, and text that is not JSON at all.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Names the code reads, so that hostile values land where they are looked at.
NAMES = (
    *("iss", "aud", "exp", "nbf", "iat", "sub", "jti", "scope", "scp", "client_id", "azp"),
    *("appid", "cid", "roles", "active", "username", "token_type", "realm_access"),
    *("alg", "kid", "typ", "crit", "jku", "jwk", "b64", "kty", "crv", "use", "n", "e", "x"),
    *("y", "key_ops", "keys", "issuer", "jwks_uri", "introspection_endpoint", "token_endpoint"),
)


def nested(depth: int, kind: str) -> str:
    """A JSON value `depth` containers deep."""
    opening = {"array": "[", "object": '{"a":', "mixed": '[{"a":'}[kind]
    closing = {"array": "]", "object": "}", "mixed": "}]"}[kind]
    return opening * depth + "1" + closing * depth


def _string(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)


JSON_SCALARS = st.one_of(
    st.sampled_from(
        [
            *("null", "true", "false", "0", "-0", "1.5", "-1.5e-3", "1e400", "-1e400", "1E-400"),
            *("2e308", "4.9e-324", "1.7976931348623157e308", '""', '"\\/"', '"a\\"b"'),
            *('"\\ud800"', '"\\udc00\\ud800"', '"\\u0000"'),  # lone surrogates, NUL
        ]
    ),
    st.integers().map(str),
    st.integers(min_value=10**17, max_value=2**1100).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(_string, st.text(max_size=12), st.booleans()),
    st.sampled_from(NAMES).map(json.dumps),
)
# Not JSON (RFC 8259), though Python's json reads the first three: each must be refused.
NOT_JSON = st.sampled_from(
    [
        *("NaN", "Infinity", "-Infinity", "00", "01", "1.", ".5", "+1", "0x10", "tru", "nul"),
        *("'x'", '"', '"\\x41"', '"\t"', "[1,]", '{"a":1,}', "[", "}"),
    ]
)
KEYS = st.one_of(
    st.sampled_from(NAMES).map(json.dumps),
    *[st.builds(_string, st.text(max_size=6), st.booleans())] * 3,
)
SPACE = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n"])


def _name(member: tuple[str, str]) -> str:
    return json.loads(member[0])  # type: ignore[no-any-return]  # what a parser compares


def _array(items: list[str], space: str) -> str:
    return "[" + space + ("," + space).join(items) + space + "]"


def _object(members: list[tuple[str, str]], space: str) -> str:
    return "{" + space + ("," + space).join(f"{k}{space}:{v}" for k, v in members) + space + "}"


SMALL: st.SearchStrategy[str] = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.builds(_array, st.lists(children, max_size=4), SPACE),
        st.builds(_object, st.lists(st.tuples(KEYS, children), max_size=4, unique_by=_name), SPACE),
    ),
    max_leaves=10,
)
BIG = st.one_of(
    st.integers(min_value=4295, max_value=4400).map(lambda n: "-" * (n % 2) + "9" * n),
    st.builds(nested, st.integers(1, 1000), st.sampled_from(["array", "object", "mixed"])),
    st.builds(nested, st.integers(60, 66), st.sampled_from(["array", "object"])),  # the bound
)


def _in_array(text: str) -> str:
    return f"[{text}]"


VALUES = st.one_of(SMALL, BIG, NOT_JSON, NOT_JSON.map(_in_array))


@st.composite
def objects(draw: st.DrawFn, required: dict[str, Any] | None = None) -> str:
    """A JSON object's text: usually `required`'s members (each maybe replaced by a hostile
    value, or repeated), then other members (one time in four a huge number or deep nesting,
    one in eight not JSON), in any order, with any JSON whitespace. Member names repeat only
    where a required member is repeated on purpose."""
    members: list[tuple[str, str]] = []
    for name, value in (required or {}).items():
        choice = draw(st.sampled_from(["keep"] * 30 + ["hostile", "drop", "twice"]))
        if choice == "drop":
            continue
        text = draw(SMALL) if choice == "hostile" else json.dumps(value)
        members.append((json.dumps(name), text))
        if choice == "twice":  # a duplicate member name: what the JSON parser must refuse
            members.append((json.dumps(name), text if draw(st.booleans()) else draw(SMALL)))
    taken = {json.loads(name) for name, _ in members}
    others = st.tuples(KEYS.filter(lambda name: json.loads(name) not in taken), SMALL)
    members += draw(st.lists(others, max_size=4, unique_by=_name))
    odds = draw(st.integers(0, 7))  # most documents are JSON, and so read further
    if odds < 2:  # a huge number or deep nesting, under any name
        members.append((json.dumps("big"), draw(BIG)))
    elif odds == 2:  # not JSON somewhere
        members.append((json.dumps("bad"), draw(st.one_of(NOT_JSON, NOT_JSON.map(_in_array)))))
    members = draw(st.permutations(members))
    return _object(members, draw(SPACE))


def encode(text: str) -> bytes:
    """UTF-8, with lone surrogates written as the invalid bytes they would be."""
    return text.encode("utf-8", "surrogatepass")


BYTES = st.one_of(
    st.binary(max_size=64),
    st.builds(encode, VALUES),
    st.builds(encode, objects()),
)
