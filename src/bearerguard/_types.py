"""Type aliases shared across the package: ASGI and WSGI callables, the clock, claims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, TypeAlias

Clock: TypeAlias = Callable[[], float]
Claims: TypeAlias = Mapping[str, Any]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

Environ: TypeAlias = dict[str, Any]  # PEP 3333: a builtin dict (as typeshed's WSGIEnvironment)
StartResponse: TypeAlias = Callable[..., Any]
WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]
