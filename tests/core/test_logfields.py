"""The pieces of a refusal's log line, pure: untrusted values shown safely, "did you mean"."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bearerguard._logfields import did_you_mean, near_form, near_issuers
from bearerguard._redact import LIMIT, clip, shown

TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from("\n\r\x1b\u2028\u2029\x85'\"\\"))


def cut(value: str) -> str:
    return value if len(value) <= LIMIT else value[:LIMIT] + "…"


@given(TEXT)
def test_shown_is_one_printable_line_that_reads_back_as_the_value_cut(value: str) -> None:
    text = shown(value)
    assert text.isprintable()  # no line break, carriage return, escape or separator
    assert ast.literal_eval(text) == cut(value)  # quotes escaped: it cannot end its field


@given(TEXT)
def test_clip_is_printable_bounded_and_exact_for_printable_values(value: str) -> None:
    field = clip(value)
    assert field is not None and field.isprintable()
    assert len(field) <= 10 * (LIMIT + 1)  # the longest escape is \U0010ffff
    if cut(value).isprintable():
        assert field == cut(value)


@pytest.mark.parametrize(
    ("value", "field", "text"),
    [(None, None, "None"), (5, "5", "5"), (True, "True", "True"), ([1], "<list>", "<list>")],
)
def test_values_that_are_not_strings(value: object, field: str | None, text: str) -> None:
    assert clip(value) == field
    assert shown(value) == text


HOSTS = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z]{2,6}){1,2}", fullmatch=True)
PATHS = st.from_regex(r"(/[A-Za-z0-9_-]{1,10}){0,3}", fullmatch=True)


@given(HOSTS, PATHS, st.sampled_from(["slash", "scheme", "case"]))
def test_an_issuer_nearly_named_is_suggested_and_an_exact_one_never(
    host: str, path: str, change: str
) -> None:
    configured = f"https://{host}{path}"
    near = near_issuers([configured, "https://unrelated.example/x"])
    variant = {
        "slash": configured + "/",
        "scheme": f"http://{host}{path}",
        "case": f"https://{host.upper()}{path}",
    }[change]
    assert did_you_mean(variant, near) == configured
    assert did_you_mean(configured, near) is None  # it is trusted: nothing to suggest
    assert did_you_mean(f"https://x{host}{path}", near) is None


@given(st.uuids())
def test_entra_v1_and_v2_issuers_of_one_tenant_are_near(tenant: object) -> None:
    v1 = f"https://sts.windows.net/{tenant}/"
    v2 = f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert near_form(v1) == near_form(v2) == f"entra:{tenant}"
    assert did_you_mean(v1, near_issuers([v2])) == v2
    assert did_you_mean(v2, near_issuers([v1])) == v1


@given(TEXT | st.integers() | st.none())
def test_a_suggestion_is_always_a_configured_issuer(iss: object) -> None:
    configured = ["https://idp.example/t", "https://sts.windows.net/abc/"]
    hint = did_you_mean(iss, near_issuers(configured))
    assert hint is None or (hint in configured and hint != iss)


# An `iss` that `urllib.parse.urlsplit` cannot read (a bracket without an IPv6 host, a netloc
# character that NFKC maps to a delimiter): it comes from a token nobody verified yet.
UNSPLITTABLE = ["http://[x", "https://x]/t", "https://a\uff03b/", "https://[::1/t", "//[/"]
URLISH = st.builds(
    lambda scheme, host, path: f"{scheme}{host}{path}",
    st.sampled_from(["https://", "http://", "//", ""]),
    st.text(st.sampled_from("[]:@#/?.\uff03\uff20\u2100ax1"), max_size=12),
    st.text(st.sampled_from("[]/x?#"), max_size=4),
)


@pytest.mark.parametrize("iss", UNSPLITTABLE)
def test_an_issuer_that_is_no_url_gets_no_suggestion_and_raises_nothing(iss: str) -> None:
    assert did_you_mean(iss, near_issuers(["https://idp.example/t"])) is None


@given(URLISH)
def test_did_you_mean_never_raises_on_url_like_text(iss: str) -> None:
    configured = ["https://idp.example/t", "https://sts.windows.net/abc/"]
    hint = did_you_mean(iss, near_issuers(configured))
    assert hint is None or (hint in configured and hint != iss)
