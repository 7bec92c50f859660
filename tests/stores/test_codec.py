"""The store codec: what round-trips, and that no bytes make it raise (only a miss, None)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bearerguard import AccessToken
from bearerguard._codec import (
    MAX_DEPTH,
    MAX_VALUE_BYTES,
    VERSION,
    decode,
    decode_entry,
    decode_privileges,
    decode_refusal,
    decode_token,
    encode,
)
from bearerguard._errors import Reason
from bearerguard._token import freeze

NOW = 1_700_000_000.0

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
claims = st.dictionaries(st.text(max_size=12), json_values, max_size=8)
optional_text = st.none() | st.text(max_size=30)
tokens = st.builds(
    AccessToken,
    issuer=st.text(max_size=40),
    subject=optional_text,
    client_id=optional_text,
    scopes=st.frozensets(st.text(max_size=15), max_size=6),
    claims=claims.map(freeze),
    expires_at=st.none() | st.floats(0, 2e10) | st.integers(0, 2**40).map(float),
    source=st.sampled_from(["jwt", "introspection"]),
)
untils = st.floats(NOW + 0.001, NOW + 1e6)


@settings(max_examples=200)
@given(tokens, untils)
def test_a_token_round_trips(token: AccessToken, until: float) -> None:
    data = encode(token, until)
    assert data.startswith(VERSION)
    back = decode_token(data, NOW)
    assert back == token
    assert back is not None
    assert type(back.claims).__name__ == "mappingproxy"  # read-only, as the caches hand out
    assert decode_privileges(data, NOW) is None
    assert decode_refusal(data, NOW) is None


@given(st.frozensets(st.text(max_size=20), max_size=20), untils)
def test_privileges_round_trip(privileges: frozenset[str], until: float) -> None:
    assert decode_privileges(encode(privileges, until), NOW) == privileges
    assert decode_token(encode(privileges, until), NOW) is None


@pytest.mark.parametrize("reason", list(Reason))
def test_refusals_round_trip(reason: Reason) -> None:
    assert decode_refusal(encode(reason, NOW + 5), NOW) is reason


@given(tokens, st.floats(-1e6, 0))
def test_nothing_is_believed_at_or_past_its_until(token: AccessToken, before: float) -> None:
    data = encode(token, NOW + before)
    assert decode(data, NOW) is None
    assert decode(encode(frozenset({"a"}), NOW), NOW) is None


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_miss(data: bytes) -> None:
    assert decode(data, NOW) is None or data.startswith(VERSION)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_behind_the_tag_never_raise(data: bytes) -> None:
    result = decode(VERSION + data, NOW)
    assert result is None or isinstance(result, AccessToken | frozenset | Reason)


@settings(max_examples=200)
@given(json_values, st.sampled_from(["t", "p", "r", "x"]))
def test_arbitrary_json_documents_never_raise(document: Any, kind: str) -> None:
    if isinstance(document, dict):
        document = {"k": kind, "u": NOW + 10, **document}
    result = decode(VERSION + json.dumps(document).encode(), NOW)
    assert result is None or isinstance(result, AccessToken | frozenset | Reason)


field_values = st.sampled_from(
    [None, True, 1, -1, 1.5, math.nan, "x", [], ["x"], [1], {}, {"a": 1}, "1700000060", 2**80]
)


@settings(max_examples=200)
@given(tokens, st.sampled_from(list("kuiscpxom")) | st.text(max_size=3), field_values)
def test_a_member_of_the_wrong_type_is_a_miss(token: AccessToken, member: str, wrong: Any) -> None:
    """Strict oracle: a changed member decodes to None, or to exactly what it now says."""
    document = json.loads(encode(token, NOW + 60)[len(VERSION) :])
    document[member] = wrong
    try:
        text = json.dumps(document, allow_nan=True)
    except ValueError:
        return
    result = decode(VERSION + text.encode(), NOW)
    valid = {
        "k": wrong == "t",
        "u": type(wrong) in (int, float) and math.isfinite(wrong) and wrong > NOW,
        "i": type(wrong) is str,
        "s": wrong is None or type(wrong) is str,
        "c": wrong is None or type(wrong) is str,
        "p": type(wrong) is list and all(type(s) is str for s in wrong),
        "x": wrong is None or (type(wrong) in (int, float) and math.isfinite(wrong)),
        "o": wrong in ("jwt", "introspection"),
        "m": type(wrong) is dict,
    }.get(member, True)  # another member is ignored
    if not valid or (type(wrong) is float and math.isnan(wrong)):  # NaN is not JSON
        assert result is None
    else:
        assert isinstance(result, AccessToken)
        if member == "m":
            assert dict(result.claims) == wrong
        if member == "p":
            assert result.scopes == frozenset(wrong)


@pytest.mark.parametrize("member", ["u", "x"])
@pytest.mark.parametrize("huge", [10**400, -(10**400), 2**1024], ids=["1e400", "-1e400", "2^1024"])
def test_an_integer_too_large_for_a_float_is_a_miss(member: str, huge: int) -> None:
    # JSON puts no bound on digits; math.isfinite raises OverflowError for such an int.
    token = AccessToken(
        issuer="https://as",
        subject=None,
        client_id="c",
        scopes=frozenset(),
        claims=freeze({}),
        expires_at=NOW + 60,
        source="introspection",
    )
    document = json.loads(encode(token, NOW + 60)[len(VERSION) :])
    document[member] = huge
    assert decode(VERSION + json.dumps(document).encode(), NOW) is None
    refusal = {"k": "r", "u": huge, "r": "EXPIRED"}
    assert decode(VERSION + json.dumps(refusal).encode(), NOW) is None


def test_other_versions_and_forms_are_a_miss() -> None:
    good = encode(frozenset({"a"}), NOW + 60)
    body = good[len(VERSION) :]
    assert decode(good, NOW) == frozenset({"a"})
    for data in (
        b"bg0" + body,  # an older format
        b"bg2" + body,  # a newer one, after a rollback
        b"BG1" + body,
        body,
        VERSION + b" " + body,
        VERSION + body + b"x",
        VERSION + body[:-1],
        VERSION,
        b"",
        VERSION + b"[1]",
        VERSION + b'{"k":"p","u":1e999,"p":[]}',  # an infinite until
        VERSION + b'{"k":"p","u":' + str(NOW + 60).encode() + b',"p":[],"p":["admin"]}',
        VERSION + b'{"k":"r","u":' + str(NOW + 60).encode() + b',"r":"__class__"}',
        VERSION + b'{"k":"r","u":' + str(NOW + 60).encode() + b',"r":"NO_SUCH_REASON"}',
        VERSION + b'{"k":"p","u":true,"p":[]}',
        VERSION + '{"k":"p","u":1e12,"p":["\udc80"]}'.encode("utf-8", "surrogatepass"),
    ):
        assert decode(data, NOW) is None, data
    assert decode("not bytes", NOW) is None
    assert decode(bytearray(good), NOW) is None


def test_size_and_depth_are_bounded() -> None:
    big = frozenset(f"scope-{i}" for i in range(MAX_VALUE_BYTES // 8))
    with pytest.raises(ValueError, match="bytes"):
        encode(big, NOW + 60)
    forged = VERSION + b'{"k":"p","u":1e12,"p":["' + b"a" * MAX_VALUE_BYTES + b'"]}'
    assert decode(forged, NOW) is None

    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = {"a": value}
        return value

    ok = AccessToken("i", None, None, frozenset(), freeze(nested(MAX_DEPTH)), None)
    assert decode_token(encode(ok, NOW + 60), NOW) == ok
    deep = AccessToken("i", None, None, frozenset(), freeze(nested(MAX_DEPTH + 1)), None)
    with pytest.raises(ValueError, match="deep"):
        encode(deep, NOW + 60)
    text = json.dumps({"k": "t", "u": 1e12, "i": "i", "s": None, "c": None, "p": [], "x": None,
                       "o": "jwt", "m": nested(MAX_DEPTH + 1)})  # fmt: skip
    assert decode(VERSION + text.encode(), NOW) is None
    very_deep = VERSION + b'{"k":"t","u":1e12,"m":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert decode(very_deep, NOW) is None


def test_what_cannot_be_carried_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="finite"):
        encode(frozenset(), math.inf)
    odd = AccessToken("i", None, None, frozenset(), {"a": {1, 2}}, None)
    with pytest.raises(ValueError, match="JSON"):
        encode(odd, NOW + 60)
    nan = AccessToken("i", None, None, frozenset(), {}, math.nan)
    with pytest.raises(ValueError, match="JSON"):
        encode(nan, NOW + 60)


@settings(max_examples=200)
@given(json_values)
def test_a_stored_refusal_names_only_strings_or_is_a_miss(named: Any) -> None:
    """What a stored refusal says the answer named (`n`, shown in the log line) is read back
    as three strings or None, or the entry is a miss: never another type, never an error."""
    document = {"k": "r", "u": NOW + 10, "r": "INACTIVE", "n": named}
    entry = decode_entry(VERSION + json.dumps(document).encode(), NOW)
    if entry is None:
        return
    value, _ = entry
    assert isinstance(value, tuple)
    reason, seen = value
    assert reason is Reason.INACTIVE
    if seen is not None:
        assert type(seen.source) is str
        assert all(item is None or type(item) is str for item in (seen.issuer, seen.client_id))
