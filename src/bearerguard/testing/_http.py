"""The wire of a LocalIssuer: the requests it records, the answers it sends, and the threaded
HTTP server on loopback that carries them."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote_plus, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request received by a :class:`LocalIssuer` (header names are lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_bytes(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def json_response(status: int, document: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, json_bytes(document), headers=headers or {})


def oauth_error(
    status: int, error: str, description: str = "", headers: Mapping[str, str] | None = None
) -> Response:
    document = {"error": error}
    if description:
        document["error_description"] = description
    return json_response(status, document, headers)


def html_response(status: int, body: bytes | None = None) -> Response:
    return Response(status, body or f"<html>{status}</html>".encode(), "text/html")


def parse_form(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def decode_basic(credentials: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: base64 of form-urlencoded ``client_id:client_secret``."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if colon else None


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], respond: Callable[[RecordedRequest], Response]
    ) -> None:
        self.respond = respond
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (e.g. timed out during set_delay): not our bug
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "LocalIssuer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(oauth_error(400, "invalid_request", "bad Content-Length"))
            return
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest(
            self.command, urlsplit(self.path).path, headers, parse_form(headers, body)
        )
        self._send(cast(Server, self.server).respond(request))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)
