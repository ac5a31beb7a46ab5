"""One loyalty step, ready to send, and the ids that make a resend recognisable.

Its ids and `operationDate` are fixed when the step is created and stored by the caller
(a `Purchase`, the offline journal, the cheque file), so a retry or a replay sends
exactly the same bytes and processing can drop duplicates.  It lives apart from the
client because those callers build and store steps without talking to processing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Self

from bridge.loyalty.protocol import (
    REQUEST_MODELS,
    Operation,
    RequestBase,
    encode,
    mask_card,
    path_for,
)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PreparedRequest:
    """One step, ready to send: the same object (or its stored record) is resent on retry."""

    op: Operation
    body: RequestBase
    purchase_id: str | None = None
    target_operation_id: str | None = None  # the redemption a cancel-operation cancels
    # the exact bytes stored in the journal: a replay sends them, not a re-encoding
    raw: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> str:
        return path_for(self.op, self.purchase_id, self.target_operation_id)

    @property
    def operation_id(self) -> str:
        return self.body.operation_id

    def payload(self) -> bytes:
        return self.raw if self.raw is not None else encode(self.body)

    @classmethod
    def from_record(cls, record: dict[str, Any], raw: bytes | None = None) -> Self:
        op = Operation(record["op"])
        return cls(
            op=op,
            body=REQUEST_MODELS[op].model_validate(record["body"]),
            purchase_id=record.get("purchaseId"),
            target_operation_id=record.get("targetOperationId"),
            raw=raw,
        )

    def describe(self) -> str:
        ident = self.body.identifier
        who = f" card {mask_card(ident.value)}" if ident is not None else ""
        pid = f" purchase {self.purchase_id}" if self.purchase_id else ""
        return f"{self.op.value}{pid} op {self.operation_id}{who}"
