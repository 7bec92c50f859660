"""A wrong type in configuration fails at construction, naming the parameter (issue 14).

A bare `str` iterates as its characters, so every parameter that takes a list of strings is
checked by one helper (`_validate.strings`): a `str` (or bytes) is refused naming the parameter,
except where one value is natural (`audience`, client ids, HTTP methods, `protect`), where it is
that one value; an item that is not a non-empty `str` is refused naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bearerguard import (
    ConfigurationError,
    Introspection,
    Issuer,
    PolicyTable,
    Requirement,
    ResourceServer,
    Rule,
    ScopeGrants,
    presets,
)
from bearerguard._guard import Guard
from bearerguard._validate import strings

ISS = "https://idp.test"
READ = Requirement.of("orders.read")


def _issuer(**kw: Any) -> Issuer:
    return Issuer(**({"issuer": ISS, "audience": "api"} | kw))


def _introspection(**kw: Any) -> Introspection:
    return Introspection(
        **({"endpoint": f"{ISS}/introspect", "client_id": "c", "client_secret": "s"} | kw)
    )


def _guard(**kw: Any) -> Guard:
    return Guard(ResourceServer(_issuer()), **kw)


def _mcp_settings(required_scopes: Any) -> object:
    mcp = pytest.importorskip("bearerguard.integrations.mcp")
    verifier = mcp.BearerGuardVerifier.for_resource(ISS, "https://mcp.test/mcp")
    return verifier.auth_settings(required_scopes=required_scopes)


def _fastmcp_verifier(required_scopes: Any) -> object:
    fastmcp = pytest.importorskip("bearerguard.integrations.fastmcp")
    server = ResourceServer(_issuer())
    return fastmcp.BearerGuardVerifier(
        server, resource_url="https://mcp.test/mcp", required_scopes=required_scopes
    )


def _fastmcp_auth(authorization_servers: Any) -> object:
    fastmcp = pytest.importorskip("bearerguard.integrations.fastmcp")
    verifier = fastmcp.BearerGuardVerifier(
        ResourceServer(_issuer()), resource_url="https://mcp.test/mcp"
    )
    return fastmcp.BearerGuardAuth(verifier, authorization_servers=authorization_servers)


def _decorator(module: str, name: str) -> Callable[[Any], object]:
    def build(any_of: Any) -> object:
        helpers = pytest.importorskip(f"bearerguard.integrations.{module}")
        return getattr(helpers, name)("orders.read", any_of=any_of)

    return build


# Every list-of-strings parameter where a bare string is refused: (id, build(value), name).
LISTS: list[tuple[str, Callable[[Any], object], str]] = [
    ("Issuer.algorithms", lambda v: _issuer(algorithms=v), "algorithms"),
    ("Issuer.required_claims", lambda v: _issuer(required_claims=v), "required_claims"),
    ("Issuer.scope_claims", lambda v: _issuer(scope_claims=v), "scope_claims"),
    ("Introspection.scope_claims", lambda v: _introspection(scope_claims=v), "scope_claims"),
    ("public_paths", lambda v: _guard(public_paths=v), "public_paths"),
    ("scopes_supported", lambda v: _guard(scopes_supported=v), "scopes_supported"),
    ("Requirement.of any_of", lambda v: Requirement.of(any_of=v), "any_of"),
    ("Requirement all_of", lambda v: Requirement(all_of=v), "all_of"),
    ("Requirement any_of", lambda v: Requirement(any_of=v), "any_of"),
    ("ScopeGrants patterns", lambda v: ScopeGrants({"orders": v}), "grants"),
    ("starlette.requires", _decorator("starlette", "requires"), "any_of"),
    ("flask.require", _decorator("flask", "require"), "any_of"),
    ("django.require", _decorator("django", "require"), "any_of"),
    ("mcp required_scopes", _mcp_settings, "required_scopes"),
    ("fastmcp required_scopes", _fastmcp_verifier, "required_scopes"),
    ("fastmcp authorization_servers", _fastmcp_auth, "authorization_servers"),
]

# Parameters where one string is one value: (id, build(value), name, read(built)).
ONES: list[tuple[str, Callable[[Any], Any], str, Callable[[Any], tuple[str, ...]]]] = [
    ("Issuer.audience", lambda v: _issuer(audience=v), "audience", lambda c: c.audience),
    (
        "Introspection.audience",
        lambda v: _introspection(audience=v),
        "audience",
        lambda c: c.audience,
    ),
    (
        "Issuer.claim_values",
        lambda v: _issuer(claim_values={"token_use": v}),
        "claim_values",
        lambda c: c.claim_values["token_use"],
    ),
    (
        "cognito client_ids",
        lambda v: presets.cognito("eu-west-1", "pool", v),
        "client_ids",
        lambda c: c.claim_values["client_id"],
    ),
    (
        "jamf_pro client_ids",
        lambda v: presets.jamf_pro("https://jamf.test", v, roles=_roles()),
        "client_ids",
        lambda c: c.audience,
    ),
    (
        "Rule methods",
        lambda v: Rule("/x", READ, methods=v),
        "methods",
        lambda r: tuple(sorted(r.methods - {"HEAD"})),
    ),
    (
        "ScopeGrants methods",
        lambda v: ScopeGrants({"s": ["/x"]}, methods=v),
        "methods",
        lambda g: tuple(sorted(g.methods - {"HEAD"})),
    ),
    ("PolicyTable protect", lambda v: PolicyTable([], protect=v), "protect", lambda t: t.protect),
]


def _roles() -> Any:
    from bearerguard import RoleResolver

    return RoleResolver(lambda role_id: ())


def _refused(build: Callable[[Any], object], value: Any, name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build(value)
    assert raised.value.field == name
    assert name in str(raised.value)


text = st.text(min_size=1, max_size=20)
bare = st.one_of(st.text(max_size=20), st.binary(max_size=20), st.binary().map(bytearray))
# An item of a list of strings that is not a non-empty string.
not_a_string = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.just(""),
    st.lists(st.text(max_size=4), max_size=2),
)
# A value that is neither one non-empty string nor a list of them.
bad_value = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.just(""),
    st.lists(not_a_string, min_size=1, max_size=2).map(lambda items: ["/x", *items]),
)


@pytest.mark.parametrize(("build", "name"), [row[1:] for row in LISTS], ids=[r[0] for r in LISTS])
@settings(deadline=None)  # the first call imports a framework
@given(value=bare)
def test_a_bare_string_where_a_list_is_meant_is_refused_naming_it(
    build: Callable[[Any], object], name: str, value: Any
) -> None:
    _refused(build, value, name)


@pytest.mark.parametrize(("build", "name"), [row[1:] for row in LISTS], ids=[r[0] for r in LISTS])
@settings(deadline=None)
@given(item=not_a_string, at=st.integers(0, 1))
def test_an_item_that_is_not_a_string_is_refused_naming_it(
    build: Callable[[Any], object], name: str, item: Any, at: int
) -> None:
    good = {"ScopeGrants patterns": "/x", "public_paths": "/x"}.get(name, "RS256")
    value = [good, good]
    value[at] = item
    _refused(build, value, name)


@pytest.mark.parametrize(
    ("build", "name", "read"), [row[1:] for row in ONES], ids=[r[0] for r in ONES]
)
@settings(deadline=None)
@given(value=st.from_regex(r"/[A-Z0-9]{1,10}", fullmatch=True))
def test_one_string_where_one_value_is_natural_is_that_value(
    build: Callable[[Any], Any], name: str, read: Callable[[Any], tuple[str, ...]], value: str
) -> None:
    assert read(build(value)) == (value,)
    assert read(build([value])) == (value,)


@pytest.mark.parametrize(
    ("build", "name", "read"), [row[1:] for row in ONES], ids=[r[0] for r in ONES]
)
@settings(deadline=None)
@given(value=bad_value)
def test_a_bad_single_value_or_item_is_refused_naming_it(
    build: Callable[[Any], Any], name: str, read: Any, value: Any
) -> None:
    _refused(build, value, name)


# -- the helper's own oracle ------------------------------------------------------------------


@given(items=st.lists(text, max_size=5), kind=st.sampled_from([list, tuple, iter]))
def test_strings_keeps_every_item_in_order(items: list[str], kind: Any) -> None:
    assert strings(kind(items), "x") == tuple(items)


@given(value=st.one_of(text, st.binary(), st.integers(), st.none()), one=st.booleans())
def test_strings_of_a_single_value(value: Any, one: bool) -> None:
    if one and isinstance(value, str):
        assert strings(value, "x", one=True) == (value,)
    else:
        with pytest.raises(ConfigurationError, match=r"^o: x must be") as raised:
            strings(value, "x", owner="o", one=one)
        assert raised.value.field == "x"


# -- the issue's examples, and the constructors that take objects, not strings ----------------


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"scope_claims": "roles"}, "scope_claims"),  # read r, o, l, e, s: every route 403
        ({"required_claims": "jti"}, "required_claims"),  # required j, t, i: every token 401
        ({"algorithms": "RS256"}, "algorithms"),  # was "unsupported algorithm 'R'"
        ({"algorithms": [None]}, "algorithms"),  # was "unsupported algorithm None"
        ({"algorithms": [["RS256"]]}, "algorithms"),  # was a TypeError (unhashable)
        ({"audience": b"api"}, "audience"),
        ({"claim_values": {"token_use": b"access"}}, "claim_values"),
    ],
)
def test_issue_examples_name_the_parameter(kw: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{ISS}: .*{name} must") as raised:
        _issuer(**kw)
    assert raised.value.field == name


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: ResourceServer(ISS), "issuers"),  # type: ignore[arg-type]
        (lambda: ResourceServer([ISS]), "issuers"),  # type: ignore[list-item]
        (lambda: ResourceServer(42), "issuers"),  # type: ignore[arg-type]
        (lambda: PolicyTable("/orders"), "policy"),  # type: ignore[arg-type]
        (lambda: PolicyTable([READ]), "policy"),  # type: ignore[list-item]
        (lambda: PolicyTable([], default="orders.read"), "policy"),  # type: ignore[arg-type]
        (lambda: Rule("/x", "orders.read"), "policy"),  # type: ignore[arg-type]
        (lambda: Rule(None, READ), "policy"),  # type: ignore[arg-type]
        (lambda: ScopeGrants([("orders", ["/x"])]), "grants"),  # type: ignore[arg-type]
        (lambda: ScopeGrants({None: ["/x"]}), "grants"),  # type: ignore[dict-item]
        (lambda: Requirement(either=("orders.read",)), "requirement"),  # type: ignore[arg-type]
        (lambda: Requirement.all(READ, "admin"), "requirement"),  # type: ignore[arg-type]
        (lambda: Requirement.any(["admin"]), "requirement"),  # type: ignore[arg-type]
        (lambda: Requirement.of(["orders.read", "admin"]), "all_of"),  # type: ignore[arg-type]
        (lambda: Requirement.of(""), "all_of"),
        (lambda: _guard(realm=b"orders"), "realm"),
    ],
)
def test_objects_of_the_wrong_kind_are_refused_at_construction(
    build: Callable[[], object], name: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build()
    assert raised.value.field == name


def test_fastapi_requires_refuses_a_bare_string() -> None:
    fastapi = pytest.importorskip("bearerguard.integrations.fastapi")
    auth = fastapi.BearerAuth(ResourceServer(_issuer()), token_url=f"{ISS}/token")
    _refused(lambda v: auth.requires("orders.read", any_of=v), "admin", "any_of")
    _refused(lambda v: fastapi.BearerAuth(auth.guard.server, scopes=v), ["orders.read"], "scopes")


def test_requirement_of_good_values_is_unchanged() -> None:
    requirement = Requirement.of("a", "b", any_of={"c", "d"})
    assert requirement == Requirement(frozenset({"a", "b"}), frozenset({"c", "d"}))
    assert Requirement(all_of={"a"}).all_of == frozenset({"a"})  # type: ignore[arg-type]
