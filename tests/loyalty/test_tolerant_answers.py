"""Answers that drift from the contract are read, counted and logged once; no sale fails.

A table of answer variants (ids as numbers, money as text, nulls, missing and extra
fields, unknown and misspelt codes, wrong types) for each of the nine operations.  Each
variant rewrites the real sandbox's answer to that step (tests/loyalty/drifting_processing.py),
and the register reads it through the real `OfflineClient` over `LoyaltyClient`: must-reach
steps through the journal, the others directly, as in the service.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.cli import main
from bridge.loyalty import errors
from bridge.loyalty.client import LoyaltyClient
from bridge.loyalty.drift import Drift
from bridge.loyalty.journal import Journal
from bridge.loyalty.offline import LocalResponse, OfflineClient
from bridge.loyalty.protocol import (
    ACTED_ON,
    COERCED,
    MISSING,
    NULL,
    UNKNOWN_CODE,
    UNKNOWN_FIELD,
    UNREADABLE,
    Operation,
    ProcessingResponse,
    answer_context,
)
from sandbox.server import SandboxServer
from tests.conftest import LOGIN, PASSWORD
from tests.loyalty.crash_child import final_state, online_reference, sell_one
from tests.loyalty.drifting_processing import (
    CARD,
    DriftingProcessing,
    Step,
    drifting_processing,
    perform,
)
from tests.loyalty.offline_helpers import shift

DRIFT_LOG = "posbridge.loyalty.drift"
BIG_ID = 9007199254740993123  # beyond 2**53: a float would not keep it
MONEY_TOP = (
    "balance",
    "availableAmount",
    "availableBonusAmount",
    "accruedAmount",
    "amount",
    "bonusAmount",
)
MONEY_CHEQUE = ("totalAmount", "totalDiscount", "totalCashback")
MONEY_LINE = ("amount", "discount", "cashback", "payAmount")
NEW_CODE = {
    "code": "BonusProgramPaused",
    "errorMessage": "program paused until 01.12",
    "cashierMessage": "Bonuses are paused today",
    "chequeMessage": "See you tomorrow",
}


@pytest.fixture
def fake(sandbox_server: SandboxServer) -> Iterator[DriftingProcessing]:
    with drifting_processing(sandbox_server.url) as f:
        yield f


@pytest.fixture
def drift() -> Drift:
    return Drift()


@pytest.fixture
def oc(fake: DriftingProcessing, drift: Drift, tmp_path: Path) -> Iterator[OfflineClient]:
    client = LoyaltyClient(fake.url, LOGIN, PASSWORD, lock_file=tmp_path / "lock", drift=drift)
    offline = OfflineClient(client, Journal(tmp_path / "journal.sqlite"))
    yield offline
    client.close()
    offline.journal.close()


# ---------------------------------------------------------------------- what was sent/read


def sent_money(answer: dict[str, Any]) -> dict[str, str]:
    """Every amount of a raw answer, by wire path, as its exact decimal text."""
    out = {k: str(answer[k]) for k in MONEY_TOP if answer.get(k) is not None}
    cheque = answer.get("cheque") or {}
    out |= {f"cheque.{k}": str(cheque[k]) for k in MONEY_CHEQUE if cheque.get(k) is not None}
    for i, line in enumerate(cheque.get("lines") or []):
        out |= {
            f"cheque.lines.{i}.{k}": str(line[k]) for k in MONEY_LINE if line.get(k) is not None
        }
    return out


def read_money(response: ProcessingResponse) -> dict[str, str]:
    """The same view of what the register read (every value a Decimal)."""
    dumped = response.model_dump(by_alias=True, exclude_none=True, round_trip=True)
    raw = {k: v for k, v in dumped.items() if k in (*MONEY_TOP, "cheque")}
    for value in _values(raw):
        assert type(value) is Decimal, value
    return sent_money(raw)


def _values(d: Any) -> Iterator[Any]:
    if isinstance(d, dict):
        for k, v in d.items():
            if k != "position":
                yield from _values(v)
    elif isinstance(d, list):
        for v in d:
            yield from _values(v)
    else:
        yield d


def _read_exactly(response: ProcessingResponse) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in read_money(response).items()}


# ---------------------------------------------------------------------- the variants


def _at(answer: dict[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    *parents, last = path.split(".")
    node: Any = answer
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node, last) if isinstance(node, dict) else None


def ids_as_numbers(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        a["transactionId"] = BIG_ID
        return a

    return rewrite


def money_as_text(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        for k in MONEY_TOP:
            if a.get(k) is not None:
                a[k] = f" {a[k]}"
        for k in MONEY_CHEQUE:
            if (a.get("cheque") or {}).get(k) is not None:
                a["cheque"][k] = str(a["cheque"][k])
        for line in (a.get("cheque") or {}).get("lines", []):
            for k in MONEY_LINE:
                if line.get(k) is not None:
                    line[k] = str(line[k])
        return a

    return rewrite


def nulls(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """null for every amount we act on, the ids and the messages."""

    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        for path in ACTED_ON.get(op, ()):
            at = _at(a, path)
            if at is not None:
                at[0][at[1]] = None
        a |= {
            "transactionId": None,
            "operationId": None,
            "errorMessage": None,
            "cashierMessage": None,
            "chequeMessage": None,
        }
        return a

    return rewrite


def missing(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        for path in ACTED_ON.get(op, ()):
            at = _at(a, path)
            if at is not None:
                at[0].pop(at[1], None)
        a.pop("transactionId", None)
        a.pop("operationId", None)
        return a

    return rewrite


def extra_fields(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        a["cardInfo"] = {"state": "Activated", "levels": [1, 2]}
        if a.get("cheque"):
            a["cheque"]["appliedOffers"] = ["SPRING"]
            for line in a["cheque"].get("lines", []):
                line["offerIds"] = [7]
        return a

    return rewrite


def code_spelling(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        a["code"] = "OK"
        return a

    return rewrite


def wrong_types(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        a["cashierMessage"] = 42
        a["chequeMessage"] = {"text": "thank you"}
        if a.get("cheque"):
            a["cheque"]["lines"] = {"0": "not a list"}
        return a

    return rewrite


def unknown_code(op: Operation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def rewrite(a: dict[str, Any]) -> dict[str, Any]:
        return dict(NEW_CODE, operationId=a.get("operationId"))

    return rewrite


VARIANTS = {
    f.__name__: f
    for f in (
        ids_as_numbers,
        money_as_text,
        nulls,
        missing,
        extra_fields,
        code_spelling,
        wrong_types,
        unknown_code,
    )
}


def expected_drift(
    variant: str, op: Operation, original: dict[str, Any]
) -> dict[tuple[str, str], int]:
    """(field, kind) -> count that reading the variant of `original` must report."""
    acted_on = ACTED_ON.get(op, ())
    if variant == "ids_as_numbers":
        return {("transactionId", COERCED): 1}
    if variant == "money_as_text":
        out: dict[tuple[str, str], int] = {}
        for path in sent_money(original):
            field = ".".join(
                "lines[]" if p == "lines" else p for p in path.split(".") if not p.isdigit()
            )
            out[(field, COERCED)] = out.get((field, COERCED), 0) + 1
        return out
    if variant == "nulls":
        return {(path, NULL): 1 for path in acted_on}
    if variant == "missing":
        return {(path, MISSING): 1 for path in acted_on}
    if variant == "extra_fields":
        out = {("cardInfo", UNKNOWN_FIELD): 1}
        if original.get("cheque"):
            out[("cheque.appliedOffers", UNKNOWN_FIELD)] = 1
            lines = len(original["cheque"].get("lines", []))
            if lines:
                out[("cheque.lines[].offerIds", UNKNOWN_FIELD)] = lines
        return out
    if variant == "code_spelling":
        return {("code", COERCED): 1}
    if variant == "wrong_types":
        out = {("cashierMessage", COERCED): 1, ("chequeMessage", UNREADABLE): 1}
        if original.get("cheque"):
            out[("cheque.lines", UNREADABLE)] = 1
        return out
    assert variant == "unknown_code"
    return {("code", UNKNOWN_CODE): 1}


def reported(drift: Drift) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for (_, field, kind), n in drift.counts().items():
        out[(field, kind)] = out.get((field, kind), 0) + n
    return out


# ---------------------------------------------------------------------- the table


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("op", list(Operation))
def test_variant_is_read_and_counted(
    op: Operation,
    variant: str,
    fake: DriftingProcessing,
    oc: OfflineClient,
    drift: Drift,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=DRIFT_LOG)
    step = Step()
    if variant == "unknown_code":  # a refusal in processing's own words, never a broken answer
        with pytest.raises(errors.UnknownRefusal) as info:
            perform(oc, fake, op, VARIANTS[variant](op), step)
        assert info.value.code == "BonusProgramPaused"
        assert info.value.cashier_text == "Bonuses are paused today"
        assert info.value.cheque_message == "See you tomorrow"
        assert not isinstance(info.value, errors.BadResponse)
        if op in (
            Operation.DISCOUNT,
            Operation.CONFIRM,
            Operation.CANCEL,
            Operation.REFUND,
            Operation.CANCEL_OPERATION,
        ):  # must-reach: kept as rejected for a technician
            assert oc.journal.counts().rejected == 1
            assert oc.journal.counts().pending == 0
        original = fake.originals[-1]
    else:
        response = perform(oc, fake, op, VARIANTS[variant](op), step)
        original = fake.originals[-1]
        assert response.ok and not isinstance(response, LocalResponse), response
        assert oc.journal.counts().pending == 0  # a must-reach step was done, not queued
        expect = sent_money(original)
        if variant in ("nulls", "missing"):  # what we act on is absent: we go on without it
            for path in ACTED_ON.get(op, ()):
                expect.pop(path, None)
        if variant == "wrong_types":  # lines we do not act on, and could not read
            expect = {k: v for k, v in expect.items() if not k.startswith("cheque.lines.")}
        assert _read_exactly(response) == {k: Decimal(v) for k, v in expect.items()}
        assert read_money(response) == expect  # digit for digit, no float on the way
        if variant == "ids_as_numbers":
            assert response.transaction_id == str(BIG_ID)
        elif variant not in ("nulls", "missing"):
            assert response.transaction_id == original["transactionId"]
        if variant == "wrong_types":
            assert (response.cashier_message, response.cheque_message) == ("42", None)
    assert reported(drift) == expected_drift(variant, op, original)
    assert all(o == op.value for (o, _, _) in drift.counts())
    warned = {
        r.getMessage()
        for r in caplog.records
        if r.name == DRIFT_LOG and r.levelno >= logging.WARNING
    }
    kinds = {kind for (_, kind) in expected_drift(variant, op, original)}
    assert len(warned) == len(
        [k for k in expected_drift(variant, op, original) if k[1] != UNKNOWN_FIELD]
    )
    if kinds == {UNKNOWN_FIELD}:
        assert not warned  # a newer processing's extra fields are no warning


def test_the_sandbox_itself_does_not_drift(
    fake: DriftingProcessing, oc: OfflineClient, drift: Drift
) -> None:
    """The contract's own server, read through the same models: nothing to report."""
    for op in Operation:
        perform(oc, fake, op, lambda a: a)
    assert len(fake.originals) == len(Operation)
    assert drift.counts() == {}


def test_a_shift_with_every_answer_drifting_ends_as_the_shift_sold_online(
    fake: DriftingProcessing,
    oc: OfflineClient,
    drift: Drift,
    sandbox_server: SandboxServer,
    tmp_path: Path,
) -> None:
    """0 lost, 0 doubled: processing ends exactly where the same shift sold online ends."""
    seed, n = 23, 12
    (tmp_path / "online").mkdir()
    reference = online_reference(tmp_path / "online", seed, n)

    def everything(a: dict[str, Any]) -> dict[str, Any]:
        if "transactionId" in a:
            a["transactionId"] = int(a["transactionId"], 16)  # a 128-bit number
        return extra_fields(Operation.BALANCE)(money_as_text(Operation.BALANCE)(a))

    fake.drift(None, everything)
    for i, item in enumerate(shift(seed, n)):
        p = sell_one(oc, seed, i, item)
        for response in p.last.values():
            assert response.ok and not isinstance(response, LocalResponse), response
    counts = oc.journal.counts()
    assert (counts.pending, counts.rejected, counts.done) == (0, 0, 2 * n)
    assert sandbox_server.status()["duplicates"] == 0
    assert final_state(sandbox_server, seed, n) == reference
    assert drift.total(field="transactionId", kind=COERCED) == len(fake.originals)
    assert drift.total(kind=UNREADABLE) + drift.total(kind=NULL) + drift.total(kind=MISSING) == 0


# ---------------------------------------------------------------------- exactness, logs


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"99999999999999.99", "99999999999999.99"),  # a float would give ...99.98
        (b"0.1000000000000000055511151231257827", "0.1000000000000000055511151231257827"),
        (b'"12.345"', "12.345"),
        (b"7", "7"),
        (b"1E+2", "1E+2"),
    ],
)
def test_amounts_are_read_exactly(
    raw: bytes, value: str, fake: DriftingProcessing, drift: Drift, tmp_path: Path
) -> None:
    fake.drift(Operation.BALANCE, lambda a: b'{"code":"Ok","balance":' + raw + b"}")
    with LoyaltyClient(
        fake.url, LOGIN, PASSWORD, lock_file=tmp_path / "lock", drift=drift
    ) as client:
        balance = client.balance(CARD).balance
    assert type(balance) is Decimal and str(balance) == value
    assert drift.total(kind=COERCED) == (1 if raw.startswith(b'"') else 0)


@pytest.mark.parametrize("raw", [b'"12,50"', b'"1_000"', b'"NaN"', b"1e400", b"true", b"[]", b"{}"])
def test_an_amount_that_cannot_be_read_is_absent(
    raw: bytes, fake: DriftingProcessing, drift: Drift, tmp_path: Path
) -> None:
    fake.drift(Operation.BALANCE, lambda a: b'{"code":"Ok","balance":' + raw + b"}")
    with LoyaltyClient(
        fake.url, LOGIN, PASSWORD, lock_file=tmp_path / "lock", drift=drift
    ) as client:
        response = client.balance(CARD)
    assert response.ok and response.balance is None
    assert reported(drift) == {("balance", UNREADABLE): 1}


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["12.50", "1e400"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    *MONEY_TOP,
    "errorMessage",
    "cashierMessage",
    "chequeMessage",
    "operationId",
    "transactionId",
]
CHEQUES = st.fixed_dictionaries(
    {},
    optional={
        **{k: JSON for k in MONEY_CHEQUE},
        "lines": JSON
        | st.lists(
            st.fixed_dictionaries(
                {}, optional={**{k: JSON for k in (*MONEY_LINE, "position", "message")}}
            ),
            max_size=3,
        ),
    },
)


@given(
    st.fixed_dictionaries(
        {"code": st.sampled_from(["Ok", "ok", "CardBlocked", "Brand-new"])},
        optional={**{k: JSON for k in FIELDS}, "cheque": JSON | CHEQUES, "extra": JSON},
    ),
    st.sampled_from(list(Operation)),
)
def test_no_value_of_any_field_but_code_makes_an_answer_unusable(
    answer: dict[str, Any], op: Operation
) -> None:
    drift = Drift()
    r = ProcessingResponse.model_validate(answer, context=answer_context(op.value, drift))
    for k in MONEY_TOP:
        assert getattr(r, _snake(k)) is None or type(getattr(r, _snake(k))) is Decimal
    for k in ("transactionId", "operationId", "errorMessage", "cashierMessage", "chequeMessage"):
        assert getattr(r, _snake(k)) is None or type(getattr(r, _snake(k))) is str
    if r.cheque is not None:
        assert all(line.position is None or type(line.position) is int for line in r.cheque.lines)
    assert (
        ProcessingResponse.model_validate(  # what the journal stores reads back the same
            r.model_dump(mode="json", by_alias=True, exclude_none=True)
        ).ok
        == r.ok
    )


def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


def test_drift_is_logged_once_per_field_and_kind_and_counted_every_time(
    fake: DriftingProcessing, oc: OfflineClient, drift: Drift, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=DRIFT_LOG)
    for _ in range(3):
        perform(oc, fake, Operation.CONFIRM, ids_as_numbers(Operation.CONFIRM))
    perform(oc, fake, Operation.BALANCE, ids_as_numbers(Operation.BALANCE))
    assert drift.counts() == {
        ("confirm", "transactionId", COERCED): 3,
        ("balance", "transactionId", COERCED): 1,
    }
    lines = [r for r in caplog.records if r.name == DRIFT_LOG]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "transactionId" in lines[0].getMessage() and "coerced" in lines[0].getMessage()


def test_unknown_field_names_cannot_grow_the_metrics_without_end(
    fake: DriftingProcessing, tmp_path: Path
) -> None:
    drift = Drift(max_series=10)

    def many_fields(a: dict[str, Any]) -> dict[str, Any]:
        return a | {f"x{i}": i for i in range(50)}

    fake.drift(Operation.BALANCE, many_fields)
    with LoyaltyClient(
        fake.url, LOGIN, PASSWORD, lock_file=tmp_path / "lock", drift=drift
    ) as client:
        assert client.balance(CARD).ok
    assert len(drift.counts()) <= 11 and drift.total(kind=UNKNOWN_FIELD) == 50


def test_a_code_that_is_not_text_makes_the_answer_unusable(
    fake: DriftingProcessing, tmp_path: Path
) -> None:
    """`code` is what says whether the step was done: a number there is not guessed at."""
    fake.drift(Operation.BALANCE, lambda a: a | {"code": 0})
    with LoyaltyClient(fake.url, LOGIN, PASSWORD, lock_file=tmp_path / "lock") as client:
        with pytest.raises(errors.BadResponse, match="code: .*result code such as Ok"):
            client.balance(CARD)


# ---------------------------------------------------------------------- the cases


@pytest.fixture
def cheque_file(tmp_path: Path) -> Path:
    path = tmp_path / "cheque.json"
    path.write_text(
        json.dumps(
            {
                "number": "77",
                "date": "2026-11-29T15:00:00",
                "lines": [
                    {
                        "position": 1,
                        "goodsId": "1001",
                        "name": "Milk",
                        "price": "89.90",
                        "quantity": "2",
                        "amount": "179.80",
                    }
                ],
            }
        )
    )
    return path


def test_purchase_command_succeeds_when_transaction_ids_are_numbers(
    fake: DriftingProcessing,
    tmp_path: Path,
    cheque_file: Path,
    capsys: pytest.CaptureFixture[str],
    sandbox_server: SandboxServer,
) -> None:
    """The issue's independent processing: `transactionId` as a JSON number, every step."""
    numbers = iter(range(1000, 2000))

    def numeric(a: dict[str, Any]) -> dict[str, Any]:
        return a | {"transactionId": next(numbers)}

    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{fake.url}"\nlogin = "{LOGIN}"\n'
        f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "lock"}"\n'
    )
    fake.drift(None, numeric)  # whatever the step, its id comes as a number
    rc = main(
        [
            "--config",
            str(cfg),
            "purchase",
            "--card",
            CARD,
            "--cheque",
            str(cheque_file),
            "--pay",
            "10",
            "--json",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    result = json.loads(out.out)
    assert Decimal(str(result["redeemed"])) == Decimal("10")
    assert sandbox_server.purchase(result["purchaseId"])["status"] == "confirmed"  # type: ignore[index]
    assert len(fake.originals) == 4  # calculate, payment, discount, confirm: all numeric ids


def test_service_metrics_show_the_drift(fake: DriftingProcessing, tmp_path: Path) -> None:
    from bridge.server import Service
    from tests.service.conftest import TOKEN, service_config

    fake.drift(Operation.CONFIRM, ids_as_numbers(Operation.CONFIRM))
    svc = Service(service_config(tmp_path, fake.url), TOKEN, devices=False).start()
    try:
        with httpx.Client(
            base_url=svc.url, headers={"X-Posbridge-Token": TOKEN}, timeout=30
        ) as api:
            cheque = api.post(
                "/v1/cheques",
                json={
                    "card": CARD,
                    "lines": [
                        {
                            "goodsId": "1001",
                            "name": "Milk",
                            "price": "89.90",
                            "quantity": "1",
                            "amount": "89.90",
                        }
                    ],
                },
            ).json()
            api.post(f"/v1/cheques/{cheque['id']}/calculate").raise_for_status()
            done = api.post(f"/v1/cheques/{cheque['id']}/confirm")
            assert done.status_code == 200 and done.json()["state"] == "confirmed", done.text
            assert done.json()["queued"] is False
            text = api.get("/metrics").text
    finally:
        svc.stop()
    assert (
        'posbridge_processing_answer_drift_total{field="transactionId",kind="coerced",'
        'operation="confirm"} 1.0'
    ) in text


def test_balance_command_says_unknown_when_processing_leaves_the_balance_out(
    fake: DriftingProcessing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "posbridge.toml"
    cfg.write_text(
        f'[processing]\nurl = "{fake.url}"\nlogin = "{LOGIN}"\n'
        f'password = "{PASSWORD}"\nlock_file = "{tmp_path / "lock"}"\n'
    )
    fake.drift(Operation.BALANCE, lambda a: {k: v for k, v in a.items() if k != "balance"})
    assert main(["--config", str(cfg), "balance", CARD]) == 0
    out = capsys.readouterr().out
    assert "balance unknown" in out and "None" not in out
