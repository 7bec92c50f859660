"""private_key_jwt (RFC 7523 §2.2, §3), pure: the introspection request, its assertion, the key."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bearerguard import ConfigurationError, Introspection
from bearerguard._assertion import ASSERTION_TYPE, PrivateKey
from bearerguard._env import introspection_from_env
from bearerguard._introspection import introspection_request

ENDPOINT = "https://idp.test/oauth2/introspect"
ISSUER = "https://idp.test"
NOW = 1_700_000_000.0
ENV = "BEARERGUARD_INTROSPECTION_"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.NoEncryption()
        if password is None
        else serialization.BestAvailableEncryption(password)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def config(key: Any, **kw: Any) -> Introspection:
    options: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "client_id": "orders-api",
        "auth_method": "private_key_jwt",
        "private_key": key,
    }
    return Introspection(**(options | kw))


def assertion_of(form: tuple[tuple[str, str], ...] | None) -> str:
    return dict(form or ())["client_assertion"]


# -- the request --------------------------------------------------------------------------------


def test_request_carries_the_assertion_and_no_secret(rsa_key: rsa.RSAPrivateKey) -> None:
    fetch = introspection_request(config(rsa_key), ENDPOINT, "tok-1", NOW)
    assert (fetch.url, fetch.method, fetch.headers) == (ENDPOINT, "POST", ())
    form = dict(fetch.form or ())
    assert set(form) == {
        "token",
        "token_type_hint",
        "client_id",
        "client_assertion_type",
        "client_assertion",
    }
    assert form["token"] == "tok-1" and form["client_id"] == "orders-api"
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


DISCOVERED = "https://idp.test/v1/introspect"  # what discovery found: the URL actually called
OKTA = "https://tenant.okta.test/oauth2/v1/introspect"  # an explicit aud
CONFIGURED = {"endpoint": ENDPOINT}
BOTH = {"endpoint": ENDPOINT, "issuer": ISSUER}
FOUND = {"endpoint": None, "issuer": ISSUER}


@pytest.mark.parametrize(
    ("setting", "where", "audience"),
    [
        # None (the default): the issuer identifier when known (draft-ietf-oauth-rfc7523bis),
        # else the endpoint.
        (None, CONFIGURED, ENDPOINT),
        (None, BOTH, ISSUER),
        (None, FOUND, ISSUER),
        ("endpoint", CONFIGURED, ENDPOINT),
        ("endpoint", BOTH, ENDPOINT),
        ("endpoint", FOUND, DISCOVERED),
        ("issuer", BOTH, ISSUER),
        ("issuer", FOUND, ISSUER),
        (OKTA, CONFIGURED, OKTA),
        (OKTA, FOUND, OKTA),
    ],
    ids=[
        "default-endpoint-only",
        "default-issuer-and-endpoint",
        "default-discovered",
        "endpoint-configured",
        "endpoint-with-issuer",
        "endpoint-discovered",
        "issuer-with-endpoint",
        "issuer-discovered",
        "url-configured",
        "url-discovered",
    ],
)
def test_assertion_claims(
    rsa_key: rsa.RSAPrivateKey, setting: str | None, where: dict[str, Any], audience: str
) -> None:
    conf = config(rsa_key, private_key_kid="rs-1", private_key_audience=setting, **where)
    called = conf.endpoint or DISCOVERED
    fetch = introspection_request(conf, called, "tok-1", NOW, jti=lambda: "jti-1")
    assert fetch.url == called
    token = assertion_of(fetch.form)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "rs-1", "typ": "JWT"}
    claims = jwt.decode(
        token,
        rsa_key.public_key(),
        algorithms=["RS256"],
        audience=audience,
        options={"verify_exp": False, "verify_iat": False, "strict_aud": True},
    )
    assert claims == {
        "iss": "orders-api",
        "sub": "orders-api",
        "aud": audience,
        "jti": "jti-1",
        "iat": int(NOW),
        "exp": int(NOW) + 60,
    }


def test_every_request_gets_a_new_assertion_and_jti(rsa_key: rsa.RSAPrivateKey) -> None:
    conf = config(rsa_key)
    tokens = [assertion_of(introspection_request(conf, ENDPOINT, "t", NOW).form) for _ in range(20)]
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 20 and all(len(jti) >= 22 for jti in jtis)  # 128 random bits
    counter = itertools.count()
    made = [
        introspection_request(conf, ENDPOINT, "t", NOW + i, jti=lambda: f"j{next(counter)}")
        for i in range(2)
    ]
    first, second = (
        jwt.decode(assertion_of(f.form), options={"verify_signature": False}) for f in made
    )
    assert (first["jti"], second["jti"]) == ("j0", "j1")
    assert second["exp"] == first["exp"] + 1  # built per request, from that request's `now`


@pytest.mark.parametrize(
    ("alg", "make"),
    [
        ("PS256", lambda: rsa.generate_private_key(65537, 2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
        ("ES384", lambda: ec.generate_private_key(ec.SECP384R1())),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate),
    ],
)
def test_other_algorithms_sign_verifiably(alg: str, make: Any) -> None:
    key = make()
    conf = config(pem(key).decode(), private_key_alg=alg)  # a PEM str, loaded once at init
    token = assertion_of(introspection_request(conf, ENDPOINT, "t", NOW).form)
    claims = jwt.decode(
        token, key.public_key(), algorithms=[alg], audience=ENDPOINT, options={"verify_exp": False}
    )
    assert claims["iss"] == "orders-api"


# -- the configuration --------------------------------------------------------------------------


def test_pem_bytes_are_loaded_and_the_key_is_never_shown(rsa_key: rsa.RSAPrivateKey) -> None:
    conf = config(pem(rsa_key))
    assert isinstance(conf.private_key, rsa.RSAPrivateKey)
    assert conf.private_key.private_numbers() == rsa_key.private_numbers()
    assert "private_key=" not in repr(conf) and "BEGIN" not in repr(conf)
    assert "private_key_alg='RS256'" in repr(conf)


@pytest.mark.parametrize(
    ("alg", "make", "needs"),
    [
        ("RS256", lambda: ec.generate_private_key(ec.SECP256R1()), "an RSA key"),
        ("RS256", lambda: rsa.generate_private_key(65537, 1024), "at least 2048 bits"),
        ("ES256", lambda: ec.generate_private_key(ec.SECP384R1()), "secp256r1"),
        ("ES256", lambda: rsa.generate_private_key(65537, 2048), "an EC key"),
        ("EdDSA", lambda: ec.generate_private_key(ec.SECP256R1()), "Ed25519"),
    ],
)
def test_key_must_fit_the_algorithm(alg: str, make: Any, needs: str) -> None:
    with pytest.raises(ConfigurationError, match=needs) as caught:
        config(make(), private_key_alg=alg)
    assert caught.value.field == "private_key"


@pytest.mark.parametrize("alg", ["HS256", "none", "rs256", ""])
def test_unsupported_algorithm(rsa_key: rsa.RSAPrivateKey, alg: str) -> None:
    with pytest.raises(ConfigurationError, match="private_key_alg") as caught:
        config(rsa_key, private_key_alg=alg)
    assert caught.value.field == "private_key_alg"


def test_unreadable_pem_is_refused_without_echoing_it(rsa_key: rsa.RSAPrivateKey) -> None:
    encrypted = pem(rsa_key, password=b"pw")
    broken = pem(rsa_key)[:200]
    for value in (encrypted, broken, "not a key", b""):
        with pytest.raises(ConfigurationError, match="not an unencrypted PEM") as caught:
            config(value)
        assert caught.value.field == "private_key"
        assert "MII" not in str(caught.value)  # no base64 of the key in the message


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"client_secret": "s3cret"}, "client_secret"),  # one credential per method
        ({"private_key": None}, "private_key"),
        ({"private_key_kid": ""}, "private_key_kid"),
        ({"client_id": ""}, "client_id"),
        ({"auth_method": "client_secret_basic"}, "private_key"),  # a key without its method
        ({"auth_method": "client_secret_jwt"}, "auth_method"),
    ],
)
def test_credential_errors_name_the_field(
    rsa_key: rsa.RSAPrivateKey, kw: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        config(rsa_key, **kw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"private_key_audience": "issuer"}, "needs an issuer"),  # none configured
        ({"private_key_audience": "http://idp.test/introspect"}, "https URL"),
        ({"private_key_audience": "idp.test/introspect"}, "https URL"),  # not absolute
        ({"private_key_audience": "Endpoint"}, "https URL"),  # the names are exact
        ({"private_key_audience": ""}, "https URL"),
        ({"private_key_audience": ["endpoint"]}, "must be a string"),
        (
            {
                "auth_method": "client_secret_basic",
                "client_secret": "s3cret",
                "private_key": None,
                "private_key_audience": "endpoint",
            },
            "only with auth_method='private_key_jwt'",
        ),
    ],
)
def test_assertion_audience_errors_name_the_field(
    rsa_key: rsa.RSAPrivateKey, kw: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        config(rsa_key, **kw)
    assert caught.value.field == "private_key_audience"
    assert "private_key_audience" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "allow_http"),
    [("http://127.0.0.1:8080/introspect", False), ("http://idp.internal/introspect", True)],
)
def test_assertion_audience_url_follows_the_transport_rule(
    rsa_key: rsa.RSAPrivateKey, value: str, allow_http: bool
) -> None:
    # The same rule as every URL here: https, or http on loopback or with allow_http.
    conf = config(rsa_key, private_key_audience=value, allow_http=allow_http)
    token = assertion_of(introspection_request(conf, ENDPOINT, "t", NOW).form)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == value


def test_secret_methods_still_need_a_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Introspection(endpoint=ENDPOINT, client_id="orders-api")
    assert caught.value.field == "client_secret"


# -- the environment ----------------------------------------------------------------------------


def test_key_file_from_env(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    path = tmp_path / "orders-api.pem"
    path.write_bytes(pem(rsa_key))
    conf = introspection_from_env(
        {
            ENV + "ENDPOINT": ENDPOINT,
            ENV + "CLIENT_ID": "orders-api",
            ENV + "AUTH_METHOD": "private_key_jwt",
            ENV + "PRIVATE_KEY_FILE": f" {path} ",
            ENV + "PRIVATE_KEY_ALG": "PS384",
            ENV + "PRIVATE_KEY_KID": "k-2025",
            ENV + "PRIVATE_KEY_AUDIENCE": " endpoint ",
        }
    )
    assert conf is not None and isinstance(conf.private_key, rsa.RSAPrivateKey)
    assert conf.private_key.private_numbers() == rsa_key.private_numbers()
    assert (conf.private_key_alg, conf.private_key_kid) == ("PS384", "k-2025")
    assert conf.private_key_audience == "endpoint"


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({ENV + "PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "PRIVATE_KEY_FILE: cannot read"),
        ({ENV + "PRIVATE_KEY_FILE": "{pem}", ENV + "CLIENT_SECRET": "s"}, "CLIENT_SECRET"),
        ({ENV + "PRIVATE_KEY_FILE": "{pem}", ENV + "PRIVATE_KEY_ALG": "ES256"}, "PRIVATE_KEY_FILE"),
        ({ENV + "PRIVATE_KEY_FILE": "{pem}", ENV + "PRIVATE_KEY_ALG": "HS256"}, "PRIVATE_KEY_ALG"),
        ({}, "PRIVATE_KEY_FILE"),
        ({ENV + "AUTH_METHOD": "client_secret_post"}, "CLIENT_SECRET"),
        (
            {ENV + "PRIVATE_KEY_FILE": "{pem}", ENV + "PRIVATE_KEY_AUDIENCE": "issuer"},
            "PRIVATE_KEY_AUDIENCE",
        ),
        (
            {ENV + "PRIVATE_KEY_FILE": "{pem}", ENV + "PRIVATE_KEY_AUDIENCE": "http://okta.test/i"},
            "PRIVATE_KEY_AUDIENCE",
        ),
        (
            {
                ENV + "AUTH_METHOD": "client_secret_post",
                ENV + "CLIENT_SECRET": "s3cret",
                ENV + "PRIVATE_KEY_AUDIENCE": "endpoint",
            },
            "PRIVATE_KEY_AUDIENCE",
        ),
    ],
)
def test_env_errors_name_the_variable(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path, extra: dict[str, str], variable: str
) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(pem(rsa_key))
    env = {
        ENV + "ENDPOINT": ENDPOINT,
        ENV + "CLIENT_ID": "orders-api",
        ENV + "AUTH_METHOD": "private_key_jwt",
    }
    env |= {name: value.format(pem=path) for name, value in extra.items()}
    with pytest.raises(ConfigurationError, match=ENV + variable) as caught:
        introspection_from_env(env)
    assert "BEGIN" not in str(caught.value)
