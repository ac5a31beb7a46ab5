"""What a request may bring to the POS API: a loopback Host name and a bounded body.

Both are checked in the front door, before any route, so a route added later is covered
without thinking about it.  The Host check closes DNS rebinding: a web page whose name
resolves to 127.0.0.1 can make a browser send requests here, but the browser then sends
the page's name as Host, never a loopback one.  The body limit keeps a 300 MB upload
from becoming 300 MB of memory: a declared length over the limit is refused before a
byte of the body is read, and a chunked body is counted as it arrives.
"""

from __future__ import annotations

from starlette.types import Message, Receive

LOOPBACK_NAMES = frozenset({b"127.0.0.1", b"localhost", b"[::1]"})
DEFAULT_MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was being read."""


def host_is_loopback(headers: list[tuple[bytes, bytes]]) -> bool:
    """True for a loopback name, with or without a port.  A request without a Host
    header (HTTP/1.0 tools) passes: browsers, the only rebinding vehicle, always send one;
    two Host headers never pass."""
    hosts = [value for name, value in headers if name == b"host"]
    if not hosts:
        return True
    if len(hosts) > 1:
        return False
    host = hosts[0].strip().lower()
    if host.startswith(b"["):
        end = host.find(b"]") + 1
        name, rest = host[:end], host[end:]
    else:
        name, colon, port = host.partition(b":")
        rest = colon + port
    if rest:
        port = rest[1:]
        if rest[:1] != b":" or not (1 <= len(port) <= 5 and port.isdigit()):
            return False
    return name in LOOPBACK_NAMES


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length the client announced, or None (no body, or a chunked one).

    The HTTP parser has already refused malformed and conflicting lengths."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


async def read_body(receive: Receive, limit: int) -> Message:
    """The whole body as one ASGI message, read as it arrives; `BodyTooLarge` as soon as
    it passes `limit` bytes.  The parts are joined into one buffer as they come (never
    kept as a list of messages), so a body sent as a million 1-byte chunks costs the
    same as one sent in one piece.  A client gone mid-body gives its disconnect message.
    """
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        body += message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            return {"type": "http.request", "body": bytes(body), "more_body": False}


def replaying(message: Message, receive: Receive) -> Receive:
    """A receive that gives `message` first, then what the connection gives (a disconnect)."""
    pending = [message]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
