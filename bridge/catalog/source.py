"""Reading catalogue rows from CSV, JSON or JSON-lines files, one row at a time.

Shops export nomenclature from spreadsheets and ERP systems, so the reader accepts
what those produce (a UTF-8 BOM, `;` or tab as CSV delimiter, header spellings such as
`goods_id`) and refuses the rest with the line where it went wrong.  Rows are yielded
as raw field mappings; judging their values is `validate`'s job.  Nothing here holds
more than one row (or, for a JSON array, one buffer of the file) in memory.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

Format = Literal["csv", "json", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "json", "jsonl")
COLUMNS = ("goodsId", "barcode", "name", "group", "price")
REQUIRED_COLUMNS = ("goodsId", "name")

_READ_SIZE = 64 * 1024
_MAX_JSON_ITEM = 1024 * 1024  # one catalogue item as JSON; anything larger is a broken file


class SourceError(Exception):
    """The file as a whole cannot be read (missing, not UTF-8, bad header, broken JSON)."""


@dataclass(frozen=True)
class RawRow:
    """One record as found in the file; `problems` are structural faults of the record itself."""

    number: int  # 1-based data row (the header is not counted)
    line: int  # line of the file the record starts on
    fields: dict[str, Any]
    problems: tuple[tuple[str | None, str], ...] = field(default=())


def _column_key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


_KNOWN = {_column_key(c): c for c in COLUMNS}


def canonical_column(name: str) -> str | None:
    """`goods_id`, `GoodsID` and `goodsId` are the same column; None if not one of ours."""
    return _KNOWN.get(_column_key(name))


_WRAPPER = re.compile(r'\{\s*"goods"\s*:\s*\[')  # the import request's own shape


def detect_format(path: Path, head: str) -> Format:
    """By extension, then by the first characters; a JSON object file is JSON lines
    unless it is the import request's shape, `{"goods": [...]}`."""
    suffix = path.suffix.lower()
    start = head.lstrip()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if start.startswith("[") or _WRAPPER.match(start):
        return "json"
    if suffix == ".json" or start.startswith("{"):
        return "jsonl"
    return "csv"


def read_rows(path: str | Path, fmt: Format | None = None) -> Iterator[RawRow]:
    """Rows of the catalogue file, streamed; raises `SourceError` for file-level faults."""
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, expected a CSV or JSON file") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        try:
            chosen = fmt or detect_format(path, _head(handle))
            if chosen == "csv":
                yield from _csv_rows(handle, path)
            elif chosen == "json":
                yield from _json_array_rows(handle, path)
            else:
                yield from _jsonl_rows(handle, path)
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x});"
                " save the file as UTF-8"
            ) from None
        except OSError as exc:
            raise SourceError(f"{path}: read failed: {exc.strerror}") from None


def _head(handle: IO[str]) -> str:
    """The file's first characters, leaving the handle at its start."""
    head = handle.read(4096)
    handle.seek(0)
    return head


# ----------------------------------------------------------------------------- CSV


def _csv_rows(handle: IO[str], path: Path) -> Iterator[RawRow]:
    # an unterminated quote ends at the csv module's field size limit (128 KiB) with an
    # error naming the line, not by swallowing the rest of the file
    header_line = handle.readline()
    if not header_line.strip():
        raise SourceError(f"{path}: empty file; expected a header line: {','.join(COLUMNS)}")
    delimiter = _delimiter(header_line)
    handle.seek(0)
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        columns = _header(header, path)
        line = reader.line_num + 1
        number = 0
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            number += 1
            problems: list[tuple[str | None, str]] = []
            if len(cells) != len(columns):
                problems.append(
                    (
                        None,
                        f"has {len(cells)} cells, the header has {len(columns)}"
                        f" (delimiter {delimiter!r}; check quoting)",
                    )
                )
            fields = {col: cells[i] for i, col in enumerate(columns) if i < len(cells)}
            yield RawRow(number, start, fields, tuple(problems))
    except csv.Error as exc:
        raise SourceError(f"{path}: line {reader.line_num}: CSV syntax error: {exc}") from None


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _header(cells: list[str], path: Path) -> list[str]:
    columns: list[str] = []
    for cell in cells:
        name = canonical_column(cell)
        if name is None:
            raise SourceError(
                f"{path}: line 1: unknown column {cell.strip()!r}; expected: {', '.join(COLUMNS)}"
            )
        if name in columns:
            raise SourceError(f"{path}: line 1: column {name!r} appears twice")
        columns.append(name)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise SourceError(
            f"{path}: line 1: header lacks {', '.join(missing)};"
            f" expected a header line such as {','.join(COLUMNS)}"
        )
    return columns


# ---------------------------------------------------------------------------- JSON


def _decoder() -> json.JSONDecoder:
    return json.JSONDecoder(parse_float=Decimal)


def _object_row(value: Any, number: int, line: int) -> RawRow:
    if not isinstance(value, dict):
        kind = type(value).__name__ if value is not None else "null"
        return RawRow(number, line, {}, ((None, f"is a JSON {kind}, expected an object"),))
    fields: dict[str, Any] = {}
    problems: list[tuple[str | None, str]] = []
    for key, val in value.items():
        name = canonical_column(str(key))
        if name is None:
            problems.append((str(key), f"unknown field; expected: {', '.join(COLUMNS)}"))
        elif name in fields:
            problems.append((name, "field given twice"))
        else:
            fields[name] = val
    return RawRow(number, line, fields, tuple(problems))


def _jsonl_rows(handle: IO[str], path: Path) -> Iterator[RawRow]:
    decoder = _decoder()
    number = 0
    for line_no, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        number += 1
        try:
            value = decoder.decode(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield RawRow(
                number, line_no, {}, ((None, f"not valid JSON: {exc.msg} (column {exc.colno})"),)
            )
            continue
        except RecursionError:
            yield RawRow(number, line_no, {}, ((None, "JSON nested too deeply"),))
            continue
        yield _object_row(value, number, line_no)


class _Buffer:
    """A window over the file for `raw_decode`: refilled as items are consumed."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.text = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # line number at `pos`

    def fill(self) -> bool:
        if self.eof:
            return False
        more = self.handle.read(_READ_SIZE)
        if not more:
            self.eof = True
            return False
        self.text = self.text[self.pos :] + more
        self.pos = 0
        return True

    def skip_space(self) -> str:
        """The next non-blank character (not consumed), or '' at end of file."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
                if self.text[self.pos] == "\n":
                    self.line += 1
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.fill():
                return ""

    def advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end


def _json_array_rows(handle: IO[str], path: Path) -> Iterator[RawRow]:
    decoder = _decoder()
    buf = _Buffer(handle)
    first = buf.skip_space()
    wrapper = _WRAPPER.match(buf.text, buf.pos) if first == "{" else None
    if wrapper is not None:
        buf.advance(wrapper.end())
    elif first == "[":
        buf.advance(buf.pos + 1)
    else:
        raise SourceError(
            f'{path}: expected a JSON array of items ([{{...}}, ...]) or {{"goods": [...]}}'
        )
    number = 0
    expect_item = True
    while True:
        ch = buf.skip_space()
        if ch == "":
            raise SourceError(f"{path}: line {buf.line}: file ends inside the JSON array")
        if ch == "]":
            buf.advance(buf.pos + 1)
            if wrapper is not None:
                _wrapper_end(buf, path)
            elif buf.skip_space() != "":
                raise SourceError(f"{path}: line {buf.line}: text after the end of the JSON array")
            return
        if ch == ",":
            if expect_item:
                raise SourceError(f"{path}: line {buf.line}: unexpected ','")
            buf.advance(buf.pos + 1)
            expect_item = True
            continue
        if not expect_item:
            raise SourceError(f"{path}: line {buf.line}: expected ',' or ']' between items")
        start_line = buf.line
        value, end = _decode_item(decoder, buf, path)
        buf.advance(end)
        number += 1
        expect_item = False
        yield _object_row(value, number, start_line)


def _wrapper_end(buf: _Buffer, path: Path) -> None:
    """After `{"goods": [...]`: the object's other keys (e.g. `replace`) are allowed, unread."""
    ch = buf.skip_space()
    rest = ""
    if ch == ",":
        buf.advance(buf.pos + 1)
        while buf.fill():
            if len(buf.text) - buf.pos > _MAX_JSON_ITEM:
                break
        rest = buf.text[buf.pos :]
        try:
            tail = json.loads("{" + rest)
        except json.JSONDecodeError:
            tail = None
        if isinstance(tail, dict):
            return
    elif ch == "}":
        buf.advance(buf.pos + 1)
        if buf.skip_space() == "":
            return
    raise SourceError(f"{path}: line {buf.line}: broken JSON after the goods array")


def _decode_item(decoder: json.JSONDecoder, buf: _Buffer, path: Path) -> tuple[Any, int]:
    while True:
        try:
            return decoder.raw_decode(buf.text, buf.pos)
        except json.JSONDecodeError as exc:
            # an item cut by the buffer's end looks like a syntax error; read on and retry
            if len(buf.text) - buf.pos > _MAX_JSON_ITEM or not buf.fill():
                line = buf.line + buf.text.count("\n", buf.pos, exc.pos)
                raise SourceError(f"{path}: line {line}: not valid JSON: {exc.msg}") from None
        except RecursionError:
            raise SourceError(f"{path}: line {buf.line}: JSON nested too deeply") from None
