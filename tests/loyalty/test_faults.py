"""Every way processing can fail maps to the exception a caller can act on.

Real misbehaving peers on loopback where one can produce the fault on demand (refused,
reset, stall, 5xx, garbage, HTML, TLS); httpx's mock transport only for DNS failure,
which a loopback peer cannot produce.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from tests.faulty_peer import faulty_peer, http_response
from tests.net import free_port

CARD = "2775000000012"


def client_for(url: str, tmp_path: Path, **kw: Any) -> LoyaltyClient:
    kw.setdefault("read_timeout", 0.5)
    return LoyaltyClient(url, "register-1", "secret-1", lock_file=tmp_path / "lock", **kw)


def test_connection_refused(tmp_path: Path) -> None:
    with client_for(f"http://127.0.0.1:{free_port()}/publicapi", tmp_path) as client:
        with pytest.raises(errors.ConnectFailed) as info:
            client.balance(CARD)
    assert info.value.offline and info.value.retryable
    assert "balance" in str(info.value) and "cannot connect" in str(info.value)


def test_read_timeout(tmp_path: Path) -> None:
    with faulty_peer("stall") as peer, client_for(peer.url, tmp_path) as client:
        with pytest.raises(errors.ProcessingTimeout, match="read timeout"):
            client.balance(CARD)


def test_reset_mid_response(tmp_path: Path) -> None:
    payload = http_response(200, b'{"code":"Ok","balance":10.00}')
    with faulty_peer("reset", payload) as peer, client_for(peer.url, tmp_path) as client:
        with pytest.raises(errors.ConnectionLost):
            client.balance(CARD)


@pytest.mark.parametrize(
    ("status", "body", "ctype", "exc", "offline"),
    [
        (500, b"oops", "text/plain", errors.ServerError, False),
        (503, b'{"error":"unavailable"}', "application/json", errors.GatewayUnavailable, True),
        (502, b"<html>bad gateway</html>", "text/html", errors.GatewayUnavailable, True),
        (504, b"", "text/plain", errors.GatewayUnavailable, True),
        (401, b'{"code":"Unauthorized"}', "application/json", errors.AuthenticationFailed, False),
        (200, b'{"code": "Ok", "balance": 12', "application/json", errors.BadResponse, False),
        (200, b"<html><body>Maintenance</body></html>", "text/html", errors.BadResponse, False),
        (200, b'{"balance": 1}', "application/json", errors.BadResponse, False),
        (200, b"[1, 2]", "application/json", errors.BadResponse, False),
    ],
)
def test_bad_answers(
    tmp_path: Path, status: int, body: bytes, ctype: str, exc: type[Exception], offline: bool
) -> None:
    with faulty_peer("reply", http_response(status, body, ctype)) as peer:
        with client_for(peer.url, tmp_path) as client, pytest.raises(exc) as info:
            client.balance(CARD)
    assert info.value.offline is offline  # type: ignore[attr-defined]
    assert "secret-1" not in str(info.value)
    assert CARD not in str(info.value)


def test_html_page_error_names_what_came(tmp_path: Path) -> None:
    page = http_response(200, b"<html><body>Maintenance</body></html>", "text/html")
    with faulty_peer("reply", page) as peer, client_for(peer.url, tmp_path) as client:
        with pytest.raises(errors.BadResponse, match=r"not JSON \(text/html\).*Maintenance"):
            client.balance(CARD)


def test_dns_failure_maps_to_name_resolution(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    with client_for(
        "https://processing.invalid/publicapi", tmp_path, transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(errors.NameResolutionFailed, match="not resolved"):
            client.balance(CARD)


# ------------------------------------------------------------------ TLS, with a real handshake


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed: cannot make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tls_cert: tuple[Path, Path]) -> Iterator[str]:
    """A real HTTPS server (the standard library's, TLS-wrapped) answering Ok to anything."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ok(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b'{"code":"Ok","balance":7.00}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    cert, key = tls_cert
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/publicapi"
    httpd.shutdown()
    httpd.server_close()
    t.join(5)


def test_tls_is_verified_by_default(tls_server: str, tmp_path: Path) -> None:
    with (
        client_for(tls_server, tmp_path, read_timeout=10) as client,
        pytest.raises(errors.TLSFailed),
    ):
        client.balance(CARD)


def test_ca_file_makes_a_private_processing_trusted(
    tls_server: str, tls_cert: tuple[Path, Path], tmp_path: Path
) -> None:
    with client_for(tls_server, tmp_path, ca_file=tls_cert[0], read_timeout=10) as client:
        assert str(client.balance(CARD).balance) == "7.00"


def test_tls_checks_the_name_not_the_address_it_resolved_to(
    tls_server: str,
    tls_cert: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deadline transport looks names up itself and connects to the address: the
    certificate must still be checked against the name in the URL."""
    by_name = tls_server.replace("127.0.0.1", "localhost")
    with client_for(by_name, tmp_path, ca_file=tls_cert[0], read_timeout=10) as client:
        assert str(client.balance(CARD).balance) == "7.00"
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",  # a name the certificate does not carry
        lambda host, *a, **k: real("127.0.0.1" if host == "other.test" else host, *a, **k),
    )
    other = tls_server.replace("127.0.0.1", "other.test")
    with (
        client_for(other, tmp_path, ca_file=tls_cert[0], read_timeout=10) as client,
        pytest.raises(errors.TLSFailed),
    ):
        client.balance(CARD)
