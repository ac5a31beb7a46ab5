"""Catalogue files, configs and a gate in front of the sandbox for the catalogue tests.

`Gate` is a real HTTP reverse proxy on loopback: it forwards to the real sandbox and
records every goods upload it forwarded, and on a chosen upload it misbehaves the
way a network or processing can (answer 503, hold the request, lose the answer after
processing took it, or alter one item so processing rejects it).  Only those faults
are staged; everything else is the sandbox's own behaviour.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from stdnum import ean

from tests.conftest import LOGIN, PASSWORD

HEADER = ["goodsId", "barcode", "name", "group", "price"]


def barcode(n: int) -> str:
    body = f"46{n:010d}"
    return body + ean.calc_check_digit(body)


def row(n: int, *, name: str | None = None, price: str | None = None) -> list[str]:
    return [
        f"G{n}",
        barcode(n),
        name or f"Item {n}",
        f"grp{n % 7}",
        price or f"{n % 1000}.{n % 100:02d}",
    ]


def write_csv(path: Path, rows: Iterable[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_catalogue(path: Path, ids: Iterable[int], **changes: dict[int, str]) -> Path:
    """Items G<n> for each n; `names={n: "new name"}` alters some."""
    names = changes.get("names", {})
    return write_csv(path, (row(n, name=names.get(n)) for n in ids))


def write_config(path: Path, url: str, tmp: Path) -> Path:
    path.write_text(
        f'[processing]\nurl = "{url}"\nlogin = "{LOGIN}"\npassword = "{PASSWORD}"\n'
        f'lock_file = "{tmp / "processing.lock"}"\n'
        f'[journal]\npath = "{tmp / "var" / "journal.sqlite"}"\n'
    )
    return path


# ------------------------------------------------------------------------ the gate


@dataclass
class Upload:
    number: int  # 1-based, counted over the gate's life
    replace: bool
    goods_ids: list[str]
    forwarded: bool


# "forward", "fail", "hold", "lose_answer", "corrupt:<goodsId>", and answers processing
# should never give: "unnamed_rejection", "short_count"
Action = str


@dataclass
class Gate:
    upstream: str
    policy: Callable[[int], Action] = lambda n: "forward"
    uploads: list[Upload] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def forwarded_ids(self) -> list[str]:
        return [g for u in self.uploads if u.forwarded for g in u.goods_ids]


class _GateServer(ThreadingHTTPServer):
    daemon_threads = True
    gate: Gate
    http: httpx.Client


class _GateHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GateServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._relay("GET", b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self.path.endswith("/Goods/Import"):
            self._relay("POST", body)
            return
        gate = self.server.gate
        data = json.loads(body)
        number = len(gate.uploads) + 1
        action = gate.policy(number)
        upload = Upload(
            number, bool(data.get("replace")), [g["goodsId"] for g in data["goods"]], False
        )
        gate.uploads.append(upload)
        if action == "fail":
            self._answer(503, b'{"code":"SystemError","errorMessage":"maintenance"}')
            return
        if action == "hold":
            gate.holding.set()
            gate.release.wait(30)
            self.close_connection = True
            return
        if action.startswith("corrupt:"):
            victim = action.split(":", 1)[1]
            for g in data["goods"]:
                if g["goodsId"] == victim:
                    code = g["barcode"]
                    g["barcode"] = code[:-1] + str((int(code[-1]) + 1) % 10)
            body = json.dumps(data).encode()
        upload.forwarded = True
        if action == "lose_answer":
            self._forward("POST", body)
            self.close_connection = True  # processing took it; the answer never arrives
            return
        response = self._forward("POST", body)
        answer = response.json()
        if action == "unnamed_rejection":
            answer["accepted"] -= 1
            answer["rejected"].append({"goodsId": None, "error": "item 7: no such group"})
        elif action == "short_count":
            answer["accepted"] -= 1
        self._answer(response.status_code, json.dumps(answer).encode())

    def _forward(self, method: str, body: bytes) -> httpx.Response:
        headers = {
            k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")
        }
        return self.server.http.request(method, self.path, content=body, headers=headers)

    def _relay(self, method: str, body: bytes) -> None:
        response = self._forward(method, body)
        self._answer(response.status_code, response.content)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class GateServer:
    def __init__(self, upstream_url: str) -> None:
        base = upstream_url.rsplit("/publicapi", 1)[0]
        self.gate = Gate(upstream_url)
        self._server = _GateServer(("127.0.0.1", 0), _GateHandler)
        self._server.gate = self.gate
        self._server.http = httpx.Client(base_url=base, timeout=30, trust_env=False)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/publicapi"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.gate.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.http.close()
        self._thread.join(5)

    def __enter__(self) -> GateServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
