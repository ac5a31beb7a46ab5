"""The loyalty client: a friendly API over one httpx connection, one request at a time.

Every request is a `PreparedRequest`: its ids and `operationDate` are fixed when the
step is created and stored by the caller (a `Purchase`, the offline journal), so a
retry or a replay sends exactly the same bytes and processing can drop duplicates.
Sending goes through the register's `Sequencer`, never around it.

Every request has a total deadline (`bridge.loyalty.transport`) and every answer a size
cap, read as a stream: a processing that trickles, stalls or answers without end costs
the till the deadline at most, and the register a megabyte.
"""

from __future__ import annotations

import logging
import ssl
import time
from base64 import b64encode
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bridge.loyalty import errors
from bridge.loyalty.drift import Drift
from bridge.loyalty.protocol import GOODS_IMPORT_PATH as _GOODS_IMPORT_PATH
from bridge.loyalty.protocol import (
    REQUEST_MODELS,
    BalanceRequest,
    Cheque,
    GoodsImportRequest,
    GoodsImportResponse,
    GoodsItem,
    Identifier,
    Operation,
    ProcessingResponse,
    RefundRequest,
    answer_context,
    encode,
    loads,
    local_now,
)
from bridge.loyalty.purchase import Purchase
from bridge.loyalty.request import PreparedRequest, new_id
from bridge.loyalty.sequencer import RegisterLock, Sequencer
from bridge.loyalty.transport import Aborted, DeadlineExceeded, DeadlineTransport

if TYPE_CHECKING:
    from bridge.config import ProcessingSettings

log = logging.getLogger("posbridge.loyalty")
M = TypeVar("M", bound=BaseModel)
Described = str | Callable[[], str]  # what a request is, for errors: worked out only then

_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
DEFAULT_DEADLINE = 8.0  # seconds for a whole request: over 5 s is a timeout for a cashier
DEFAULT_MAX_ANSWER_BYTES = 1 << 20  # a contract answer is a few kB; a cheque of 1,000 lines ~300 kB


class LoyaltyClient:
    """Talks to processing for one register.

    `transport` is for tests that need faults a real server cannot produce on demand;
    everything else uses our deadline-keeping network transport.  `deadline` bounds each
    request in all (connect, send, answer), `max_answer_bytes` each answer's body.
    """

    def __init__(
        self,
        url: str,
        login: str,
        password: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        deadline: float = DEFAULT_DEADLINE,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        ca_file: Path | None = None,
        lock_file: Path | None = None,
        cashier: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = local_now,
        observer: Callable[[str, str, float], None] | None = None,
        drift: Drift | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.cashier = cashier
        self.clock = clock  # the register's local wall clock; tests pin it to probe offer hours
        self.observer = observer  # (operation, outcome, seconds) after every request, for metrics
        self.drift = drift if drift is not None else Drift()  # answers off the contract, counted
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        if not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds, not {deadline!r}")
        self.deadline = deadline
        self.max_answer_bytes = max_answer_bytes
        self._network: DeadlineTransport | None = None
        if transport is None:
            tls = not self.url.lower().startswith("http://")
            transport = self._network = DeadlineTransport(deadline, verify, tls=tls)
        self._stopping = False
        self._http = httpx.Client(  # its settings, and the transport's closing
            base_url=self.url,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            verify=verify,
            transport=transport,
            headers=_JSON_HEADERS,
            trust_env=False,
        )
        # What the httpx client would put on every request, worked out once: requests go
        # straight to the transport (`_exchange`).  The client's own per-request layers
        # (URL merging twice over, the auth flow, redirect and cookie handling, event
        # hooks) cost ~0.1 ms a call and do nothing here: processing's contract has no
        # redirects and no cookies, and the credentials never change.
        self._transport = transport
        self._prefix = str(self._http.base_url)  # ends with "/", as httpx merges paths
        self._headers = httpx.Headers(self._http.headers)
        self._headers["Authorization"] = _basic(login, password)
        self._timeouts = self._http.timeout.as_dict()
        self._sequencer = Sequencer(RegisterLock(lock_file))

    @classmethod
    def from_settings(cls, settings: ProcessingSettings, **overrides: Any) -> LoyaltyClient:
        """The client the `[processing]` section of the config describes."""
        kwargs: dict[str, Any] = dict(
            url=str(settings.url),
            login=settings.login,
            password=settings.secret_password(),
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=settings.deadline,
            max_answer_bytes=settings.max_answer_bytes,
            ca_file=settings.ca_file,
            lock_file=settings.lock_file,
            cashier=settings.cashier,
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"LoyaltyClient({self.url!r})"

    # ------------------------------------------------------------------ sending

    def send(self, request: PreparedRequest) -> ProcessingResponse:
        """Send one step (waiting for this register's turn); raise on anything but `Ok`."""
        return self._sequencer.call(lambda: self._send_now(request))

    async def asend(self, request: PreparedRequest) -> ProcessingResponse:
        return await self._sequencer.acall(lambda: self._send_now(request))

    def exclusive(self) -> Sequencer:
        """The sequencer itself, for callers (the journal replayer) that must share the turn."""
        return self._sequencer

    def send_stored(
        self, op: Operation, path: str, payload: bytes, what: str
    ) -> ProcessingResponse:
        """Send bytes exactly as stored (the journal's replay), in the register's turn."""
        return self._sequencer.call(lambda: self._post(op, path, payload, what))

    def _send_now(self, request: PreparedRequest) -> ProcessingResponse:
        # described only if something goes wrong: masking the card costs on every call
        return self._post(request.op, request.path, request.payload(), request.describe)

    def _exchange(
        self,
        method: str,
        path: str,
        what: Described,
        payload: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """One request and its answer's body, read within the cap (or refused)."""
        if self._stopping:
            raise errors.ConnectionLost(f"{_said(what)}: not sent: the service is stopping")
        try:
            request = httpx.Request(
                method,
                self._prefix + path.lstrip("/"),
                headers=self._headers,
                content=payload,
                extensions={
                    "timeout": self._timeouts
                    if timeout is None
                    else httpx.Timeout(timeout).as_dict()
                },
            )
            response = self._transport.handle_request(request)
            response.request = request
            try:
                body = _read_capped(response, self.max_answer_bytes, what)
            finally:
                response.close()  # an answer not read to its end drops its connection
        except httpx.HTTPError as exc:
            raise _transport_error(exc, f"{_said(what)}: {self.url}") from None
        return response, body

    def _post(
        self, op: Operation, path: str, payload: bytes, what: Described
    ) -> ProcessingResponse:
        started = time.perf_counter()
        outcome = "error"
        try:
            try:
                http_response, body = self._exchange("POST", path, what, payload)
            except errors.LoyaltyError as error:
                outcome = type(error).__name__
                raise
            response = _parse(
                http_response, body, what, ProcessingResponse, answer_context(op.value, self.drift)
            )
            outcome = response.code
        finally:
            elapsed = time.perf_counter() - started
            if self.observer is not None:
                self.observer(op.value, outcome, elapsed)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("processing %s -> %s in %.1f ms", _said(what), response.code, elapsed * 1000)
        if not response.ok:
            raise errors.business_error(response)
        return response

    # ------------------------------------------------------------------ operations

    def prepare(
        self,
        op: Operation,
        *,
        purchase_id: str | None = None,
        target_operation_id: str | None = None,
        identifier: Identifier | None = None,
        **fields: Any,
    ) -> PreparedRequest:
        """A new step with a fresh operationId and the register's local time."""
        body = REQUEST_MODELS[op](
            operation_id=new_id(),
            operation_date=self.clock(),
            identifier=identifier,
            cashier=self.cashier,
            **fields,
        )
        return PreparedRequest(op, body, purchase_id, target_operation_id)

    def balance(self, identifier: Identifier | str) -> ProcessingResponse:
        ident = identifier if isinstance(identifier, Identifier) else Identifier(value=identifier)
        body = BalanceRequest(
            operation_id=new_id(),
            operation_date=self.clock(),
            identifier=ident,
            cashier=self.cashier,
        )
        return self.send(PreparedRequest(Operation.BALANCE, body))

    def purchase(self, cheque: Cheque, identifier: Identifier | str | None = None) -> Purchase:
        ident = Identifier(value=identifier) if isinstance(identifier, str) else identifier
        return Purchase(self, cheque, ident)

    def prepare_refund(
        self,
        original_purchase_id: str,
        cheque: Cheque,
        identifier: Identifier | str | None = None,
    ) -> PreparedRequest:
        """A refund is its own purchase id, pointing at the confirmed original."""
        ident = Identifier(value=identifier) if isinstance(identifier, str) else identifier
        body = RefundRequest(
            operation_id=new_id(),
            operation_date=self.clock(),
            identifier=ident,
            cashier=self.cashier,
            cheque=cheque,
            refund_purchase_id=original_purchase_id,
        )
        return PreparedRequest(Operation.REFUND, body, purchase_id=new_id())

    def import_goods(self, goods: list[GoodsItem], replace: bool = False) -> GoodsImportResponse:
        """One chunk of the nomenclature (at most 1,000 items), in the register's turn."""
        payload = encode(GoodsImportRequest(goods=goods, replace=replace))
        what = f"goods import of {len(goods)} items"

        def post() -> GoodsImportResponse:
            http_response, body = self._exchange("POST", _GOODS_IMPORT_PATH, what, payload)
            return _parse(
                http_response,
                body,
                what,
                GoodsImportResponse,
                answer_context("goods_import", self.drift),
            )

        return self._sequencer.call(post)

    def probe(self) -> str | None:
        """Raise unless processing answers HTTP at all (any status but 502/503/504 counts).

        Returns the answer's HTTP Date header, which the doctor compares with our clock.
        """

        def get() -> str | None:
            response, _ = self._exchange("GET", "/", "probe", timeout=self._http.timeout.connect)
            if response.status_code in (502, 503, 504):
                raise errors.GatewayUnavailable(
                    f"probe: processing unavailable (HTTP {response.status_code})",
                    response.status_code,
                )
            date: str | None = response.headers.get("date")
            return date

        return self._sequencer.call(get)

    # ------------------------------------------------------------------ lifecycle

    def stop_sending(self) -> None:
        """From any thread: send nothing more and cut the request in flight short.

        What it cut fails as a lost connection, so a must-reach step stays in the journal
        (resent with the same ids after the restart) and a live one is answered offline.
        """
        self._stopping = True
        if self._network is not None:
            self._network.abort()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the sender thread: calls still queued fail fast, a stuck one is cut short."""
        self.stop_sending()
        self._sequencer.close(timeout)
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- helpers


def _said(what: Described) -> str:
    return what if isinstance(what, str) else what()


def _basic(login: str, password: str) -> str:
    """The Basic credentials header, as httpx.BasicAuth writes it (UTF-8)."""
    return "Basic " + b64encode(f"{login}:{password}".encode()).decode("ascii")


def _read_capped(response: httpx.Response, cap: int, what: Described) -> bytes:
    """The answer's body, or BadResponse once it says or shows it is over `cap` bytes."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit():
        if int(length) > cap:
            raise errors.BadResponse(
                f"{_said(what)}: answer of {int(length)} bytes is over the {cap}-byte limit",
                response.status_code,
            )
        if "content-encoding" not in response.headers:
            return response.read()  # the length is kept by the HTTP parser: nothing more comes
    parts: list[bytes] = []
    size = 0
    for part in response.iter_bytes():  # decoded: a compressed answer counts at full size
        size += len(part)
        if size > cap:
            raise errors.BadResponse(
                f"{_said(what)}: answer over the {cap}-byte limit (read {size} bytes, not ended)",
                response.status_code,
            )
        parts.append(part)
    return b"".join(parts)


def _transport_error(exc: httpx.HTTPError, where: str) -> errors.LoyaltyError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, DeadlineExceeded):
        return errors.ProcessingTimeout(f"{where}: {text}")
    if isinstance(exc, Aborted):
        return errors.ConnectionLost(f"{where}: {text}")
    if isinstance(exc, httpx.TimeoutException):
        phase = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
        if isinstance(exc, httpx.WriteTimeout):
            phase = "write"
        return errors.ProcessingTimeout(f"{where}: {phase} timeout")
    if isinstance(exc, httpx.ConnectError):
        if _caused_by_tls(exc):
            return errors.TLSFailed(f"{where}: TLS failed: {text}")
        low = text.lower()
        if any(s in low for s in ("name or service", "name resolution", "nodename", "getaddrinfo")):
            return errors.NameResolutionFailed(f"{where}: host name not resolved: {text}")
        return errors.ConnectFailed(f"{where}: cannot connect: {text}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return errors.ConnectionLost(f"{where}: connection lost: {text}")
    if isinstance(exc, httpx.TransportError):
        return errors.ConnectFailed(f"{where}: {text}")
    return errors.BadResponse(f"{where}: {text}")


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _json_body(http_response: httpx.Response, body: bytes, described: Described) -> Any:
    status = http_response.status_code
    if status == 200:
        try:
            return loads(body)
        except ValueError:
            pass  # said below, with the content type
    what = _said(described)
    if status in (401, 403):
        raise errors.AuthenticationFailed(
            f"{what}: processing refused the register's login/password (HTTP {status})", status
        )
    if status in (502, 503, 504):
        raise errors.GatewayUnavailable(f"{what}: processing unavailable (HTTP {status})", status)
    if status >= 500:
        raise errors.ServerError(
            f"{what}: processing failed (HTTP {status}){_detail(body)}", status
        )
    if status != 200:
        raise errors.ProcessingHTTPError(f"{what}: unexpected HTTP {status}{_detail(body)}", status)
    try:
        return loads(body)
    except ValueError:
        ctype = http_response.headers.get("content-type", "no content type")
        raise errors.BadResponse(
            f"{what}: answer is not JSON ({ctype}): {_snippet(body)}", status
        ) from None


def _parse(
    http_response: httpx.Response,
    body: bytes,
    what: Described,
    model: type[M],
    context: dict[str, Any] | None = None,
) -> M:
    data = _json_body(http_response, body, what)
    try:  # tolerant models; `context` says where their drift is reported
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise errors.BadResponse(
            f"{_said(what)}: answer does not match the contract: {_first_error(exc)}",
            http_response.status_code,
        ) from None


def _detail(raw: bytes) -> str:
    try:
        body = loads(raw)
    except ValueError:
        return f": {_snippet(raw)}" if raw else ""
    if isinstance(body, dict) and body.get("errorMessage"):
        return f": {body.get('code', '')} {body['errorMessage']}"
    return ""


def _snippet(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", "replace")
    return repr(" ".join(text.split()))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"
