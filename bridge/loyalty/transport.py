"""httpx's network transport with a total deadline per request, and a way to cut it short.

httpx's timeouts apply to each connect, read and write on its own: a processing that
sends one byte every two seconds never trips a five-second read timeout, and the till
waits as long as it trickles.  Here every socket operation of a request waits at most
the smaller of its own timeout and the time left until the request's deadline, so the
whole exchange (connect, TLS, request, answer headers and body) ends by the deadline.

The transport also keeps the live sockets, so another thread can shut them down:
`abort()` is how a stopping service frees a sender thread stuck in a request.

One request at a time goes through this transport (the register's sequencer), so the
deadline is one attribute, not per-thread state.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx


class DeadlineExceeded(httpx.ReadTimeout):
    """The request's total deadline passed before the answer was read to its end."""


class Aborted(httpx.NetworkError):
    """The connection was shut down from outside (the service is stopping)."""


_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # most specific first: the first match wins
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


class _Clock:
    """The running request's deadline (monotonic seconds), shared by its streams."""

    __slots__ = ("at", "deadline")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # seconds a request may take in all
        self.at = float("inf")  # when the running request must be over

    def budget(self, timeout: float | None) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("deadline exceeded")
        return left if timeout is None or timeout > left else timeout


class _Stream(httpcore.NetworkStream):
    """A socket stream whose every wait is cut to the request's time left."""

    def __init__(self, inner: httpcore.NetworkStream, backend: _Backend) -> None:
        self._inner = inner
        self._backend = backend
        self._clock = backend.clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._clock.budget(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._clock.budget(timeout))

    def close(self) -> None:
        self._backend.forget(self)
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._backend.forget(self)
        inner = self._inner.start_tls(ssl_context, server_hostname, self._clock.budget(timeout))
        return self._backend.keep(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def shutdown(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            try:
                # socket.socket's own: an SSLSocket's would first drop its TLS state,
                # under the feet of the thread reading it
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


def _resolve(host: str, port: int, wait: float) -> list[str]:
    """The addresses of `host`, looked up within `wait` seconds.

    getaddrinfo cannot be interrupted and a resolver that does not answer holds it for
    its own timeouts and retries (tens of seconds), so it runs on a thread of its own
    and we stop waiting at the deadline; TLS still checks the name (httpcore passes the
    host, not the address, as server_hostname)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    found: list[str] = []
    failed: list[OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.extend(dict.fromkeys(str(info[4][0]) for info in infos))
        except OSError as exc:
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="posbridge-resolve", daemon=True).start()
    if not done.wait(wait):
        raise httpcore.ConnectTimeout(f"name lookup of {host} took over {wait:.1f} s")
    if failed or not found:
        raise httpcore.ConnectError(str(failed[0]) if failed else f"{host}: no address")
    return found


class _Backend(httpcore.NetworkBackend):
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self._real = httpcore.SyncBackend()
        self._live: set[_Stream] = set()
        self._lock = threading.Lock()

    def keep(self, inner: httpcore.NetworkStream) -> _Stream:
        stream = _Stream(inner, self)
        with self._lock:
            self._live.add(stream)
        return stream

    def forget(self, stream: _Stream) -> None:
        with self._lock:
            self._live.discard(stream)

    def shutdown_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for stream in live:
            stream.shutdown()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in _resolve(host, port, self.clock.budget(timeout)):
            try:
                return self.keep(
                    self._real.connect_tcp(
                        address, port, self.clock.budget(timeout), local_address, socket_options
                    )
                )
            except httpcore.ConnectError as exc:  # the next address, as create_connection does
                failure = exc
        raise failure or httpcore.ConnectError(f"{host}: no address to connect to")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - not used
        return self.keep(
            self._real.connect_unix_socket(path, self.clock.budget(timeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:  # pragma: no cover - retries are off
        self._real.sleep(seconds)


class DeadlineTransport(httpx.BaseTransport):
    """httpx's transport contract over an httpcore pool whose sockets keep a deadline."""

    def __init__(
        self, deadline: float, verify: ssl.SSLContext | bool = True, *, tls: bool = True
    ) -> None:
        """`tls=False` for a client whose every URL is plain http: no TLS context is built
        (loading the CA bundle into one costs ~2 MB of RSS for nothing)."""
        if not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, not {deadline!r}")
        self._clock = _Clock(deadline)
        self._backend = _Backend(self._clock)
        self._aborted = False
        self._tls = tls
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False) if tls else None,
            max_connections=4,
            max_keepalive_connections=1,
            keepalive_expiry=5.0,
            network_backend=self._backend,
        )

    @property
    def deadline(self) -> float:
        return self._clock.deadline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("DeadlineTransport sends synchronous requests only")
        if self._aborted:
            raise Aborted("not sent: the service is stopping")
        url = request.url
        if not self._tls and url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"{url.scheme} on a transport built for plain http")
        self._clock.at = time.monotonic() + self._clock.deadline
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = self._pool.handle_request(core)
        except Exception as exc:
            raise self._mapped(exc) from exc
        if not isinstance(answer.stream, Iterable):  # httpcore's sync pool gives one
            raise TypeError("httpcore gave an asynchronous answer stream to a sync transport")
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, self),
            extensions=answer.extensions,
        )

    def _mapped(self, exc: Exception) -> Exception:
        if self._aborted:
            return Aborted("the request was cut short: the service is stopping")
        if isinstance(exc, httpcore.TimeoutException) and time.monotonic() >= self._clock.at:
            return DeadlineExceeded(
                f"no complete answer within the {self._clock.deadline:g} s deadline"
            )
        for core, ours in _EXCEPTIONS:
            if isinstance(exc, core):
                return ours(str(exc) or type(exc).__name__)
        return exc

    def abort(self) -> None:
        """Shut down every open connection now, from any thread, and send nothing more:
        the request in flight fails at once as a lost connection."""
        self._aborted = True
        self._backend.shutdown_all()

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes], transport: DeadlineTransport) -> None:
        self._inner = inner
        self._transport = transport

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except Exception as exc:
            raise self._transport._mapped(exc) from exc

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()
