"""Property tests of framework settings (Django's `settings`, Flask's and Quart's `app.config`).

A setting may hold text or a Python value; `_appconfig` turns each into the text its
`BEARERGUARD_*` variable would hold and hands it to the one parser `from_env` uses. Oracles: a
value is either read exactly as `from_env` reads that text, or refused with a
`ConfigurationError` naming the key; never another exception, and never a server built from
anything but what the settings say.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from bearerguard import ConfigurationError, ResourceServer
from bearerguard._appconfig import config_text, guard_from_settings

ISSUER = "https://login.example.com/tenant"
TEXT = st.text(max_size=12)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), TEXT, st.binary(max_size=8)
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.tuples(TEXT, TEXT),
    st.dictionaries(TEXT, SCALARS, max_size=2),
)
KEYS = st.sampled_from(
    ["AUDIENCE", "ALGORITHMS", "LEEWAY", "SCOPE_CLAIMS", "REALM", "PUBLIC_PATHS", "OPTIONAL",
     "SCOPES_SUPPORTED", "HTTP_TIMEOUT", "REQUIRED_CLAIMS", "STRICT"]
)  # fmt: skip


@given(VALUES)
def test_a_value_is_text_or_a_configuration_error_naming_its_key(value: Any) -> None:
    refusal: str | None
    try:
        text = config_text("BEARERGUARD_X", value)
    except ConfigurationError as exc:
        refusal = str(exc)
    else:
        refusal = None
    if refusal is not None:
        assert "BEARERGUARD_X" in refusal
        return
    assert isinstance(text, str)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        assert text == ",".join(value)  # a list is its variable's comma-separated text


@given(KEYS, VALUES)
def test_settings_build_what_from_env_builds_or_name_the_key(key: str, value: Any) -> None:
    settings = {"ISSUER": ISSUER, "AUDIENCE": "api://orders", key: value}
    refusal: str | None
    try:
        guard = guard_from_settings(settings, source="settings")
    except ConfigurationError as exc:
        refusal = str(exc)
    else:
        refusal = None
    event("refused" if refusal else "accepted")
    if refusal is not None:  # names the setting: as a key, or as the Guard's parameter
        assert key in refusal or key.lower() in refusal, refusal
        return
    # Accepted: the server is the one from_env builds from the same text.
    if key not in {"REALM", "PUBLIC_PATHS", "OPTIONAL", "SCOPES_SUPPORTED", "STRICT"}:
        variables = {f"BEARERGUARD_{k}": config_text(k, v) for k, v in settings.items()}
        expected = ResourceServer.from_env(variables)
        assert guard.server.issuers == expected.issuers
        expected.close()
    guard.server.close()
