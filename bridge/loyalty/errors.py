"""What can go wrong talking to processing, as types a caller can act on.

Three families, because each calls for a different reaction:
- `ProcessingUnavailable`: processing could not be reached or is down (refused, DNS,
  TLS, timeout, reset, 502/503/504).  The register goes offline; the step may be
  retried later with the same ids.
- `ProcessingHTTPError` / `BadResponse`: processing answered, but not as the contract
  says (401, other 4xx/5xx, HTML error page, broken JSON).  401 is a configuration
  problem a technician must fix; the rest may be retried.
- `BusinessError`: processing refused the operation (`code` != Ok).  It carries the
  contract's texts; the cashier sees `cashier_message`.

`retryable` tells a journal or a retry loop whether sending the same step again can
succeed.  No message here ever contains the password or a full card number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from bridge.loyalty.protocol import ProcessingResponse


class LoyaltyError(Exception):
    retryable: ClassVar[bool] = False
    #: True when the failure says processing cannot be reached (the register goes offline)
    offline: ClassVar[bool] = False

    @property
    def cashier_text(self) -> str:
        return "Loyalty processing error, see the service log"


# ----------------------------------------------------------------- unreachable


class ProcessingUnavailable(LoyaltyError):
    retryable = True
    offline = True

    @property
    def cashier_text(self) -> str:
        return "Loyalty processing is unreachable"


class ConnectFailed(ProcessingUnavailable):
    """TCP connection refused or the network is unreachable."""


class NameResolutionFailed(ConnectFailed):
    """The processing host name could not be resolved (DNS)."""


class TLSFailed(ProcessingUnavailable):
    """TLS handshake or certificate verification failed."""


class ProcessingTimeout(ProcessingUnavailable):
    """Connect or read timeout; after a read timeout the step may have been processed."""


class ConnectionLost(ProcessingUnavailable):
    """The connection broke mid-request or mid-response."""


# ----------------------------------------------------------------- bad answers


class ProcessingHTTPError(LoyaltyError):
    """Processing answered with an HTTP status the contract does not use for business outcomes."""

    retryable = True

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationFailed(ProcessingHTTPError):
    """401/403: login or password of this register is wrong (fix the config)."""

    retryable = False

    @property
    def cashier_text(self) -> str:
        return "Loyalty processing refused the register's credentials"


class ServerError(ProcessingHTTPError):
    """5xx from processing."""


class GatewayUnavailable(ServerError, ProcessingUnavailable):
    """502/503/504: a proxy or processing itself is down; treated as unreachable."""

    retryable = True
    offline = True


class BadResponse(LoyaltyError):
    """The answer is not contract JSON (HTML error page, truncated or malformed JSON)."""

    retryable = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------- refusals


class BusinessError(LoyaltyError):
    """Processing refused the step; `code` is the contract's error code."""

    code: str = "?"

    def __init__(self, response: ProcessingResponse) -> None:
        self.response = response
        self.code = response.code
        self.error_message = response.error_message
        self.cashier_message = response.cashier_message
        self.cheque_message = response.cheque_message
        text = response.error_message or response.cashier_message or "-"
        super().__init__(f"processing refused: {self.code}: {text}")

    @property
    def cashier_text(self) -> str:
        return self.cashier_message or self.error_message or self.code


class CardNotFound(BusinessError):
    pass


class CardBlocked(BusinessError):
    @property
    def cashier_text(self) -> str:
        return "Card is blocked"


class CardNotActivated(BusinessError):
    """Accrual works for such a card; redemption is refused."""


class CardExpired(BusinessError):
    pass


class NotEnoughMoney(BusinessError):
    pass


class LargePaymentAmount(BusinessError):
    pass


class NotUniqueOperationID(BusinessError):
    """The step was already processed (a replay treats it as done)."""


class NotUniquePurchaseID(BusinessError):
    pass


class OperationNotFound(BusinessError):
    pass


class OperationIsConfirmed(BusinessError):
    pass


class OperationIsCanceled(BusinessError):
    pass


class PurchaseNotFound(BusinessError):
    pass


class DifferentCheque(BusinessError):
    pass


class IncorrectOperationOrder(BusinessError):
    pass


class PurchaseOperationConflict(BusinessError):
    """Requests of this register overlapped at processing; safe to retry with the same ids."""

    retryable = True


class LimitGained(BusinessError):
    pass


class DeviceBlocked(BusinessError):
    pass


class WrongPin(BusinessError):
    pass


class SystemError_(BusinessError):
    retryable = True


class UnknownRefusal(BusinessError):
    """A `code` this contract version does not list: processing refused, in its own words.

    Newer processing versions add codes; an answer with one is still an answer (never a
    broken one), so the step is refused and the cashier sees processing's message.
    """

    @property
    def cashier_text(self) -> str:
        return (
            self.cashier_message
            or self.error_message
            or f"Loyalty processing refused the operation ({self.code})"
        )


_BY_CODE: dict[str, type[BusinessError]] = {
    cls.__name__.rstrip("_"): cls
    for cls in (
        CardNotFound,
        CardBlocked,
        CardNotActivated,
        CardExpired,
        NotEnoughMoney,
        LargePaymentAmount,
        NotUniqueOperationID,
        NotUniquePurchaseID,
        OperationNotFound,
        OperationIsConfirmed,
        OperationIsCanceled,
        PurchaseNotFound,
        DifferentCheque,
        IncorrectOperationOrder,
        PurchaseOperationConflict,
        LimitGained,
        DeviceBlocked,
        WrongPin,
        SystemError_,
    )
}


def business_error(response: ProcessingResponse) -> BusinessError:
    """The exception for a non-Ok response; a code the contract does not list is an
    `UnknownRefusal` (protocol.py has already matched known codes case-insensitively)."""
    return _BY_CODE.get(response.code, UnknownRefusal)(response)
