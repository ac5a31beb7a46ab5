"""Reading and judging catalogue rows: every format, every fault, one clear line each."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean

from bridge.catalog.push import Catalogue
from bridge.catalog.source import RawRow, SourceError, read_rows
from bridge.catalog.state import CatalogState
from bridge.catalog.validate import Item, RowError, validate
from bridge.loyalty.protocol import GoodsItem, encode, loads
from tests.catalog.helpers import barcode, write_csv


def check(**fields: object) -> tuple[Item | None, list[str]]:
    item, errors = validate(RawRow(1, 2, dict(fields)))
    return item, [str(e) for e in errors]


def stage(tmp_path: Path, path: Path) -> tuple[Catalogue, list[RowError]]:
    errors: list[RowError] = []
    state = CatalogState.open(tmp_path / "state.sqlite")
    catalogue = Catalogue(state)
    catalogue.load(read_rows(path), errors.append)
    return catalogue, errors


# ------------------------------------------------------------------ single rows


def test_a_good_row_becomes_a_wire_item() -> None:
    item, errors = check(goodsId=" 1001 ", barcode="4600000000015", name="Milk", price="89,9")
    assert errors == []
    assert item is not None
    assert item.wire() == GoodsItem(
        goods_id="1001", barcode="4600000000015", name="Milk", price=Decimal("89.90")
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Milk"}, "row 1 (line 2): goodsId: missing; every item needs one"),
        ({"goodsId": "1", "name": "  "}, "row 1 (line 2): name: missing; every item needs one"),
        ({"goodsId": "x" * 65, "name": "M"}, "is 65 characters long, at most 64"),
        ({"goodsId": "1", "name": "Milk\n2.5%"}, "contains control characters"),
        ({"goodsId": True, "name": "M"}, "goodsId True: expected text"),
        ({"goodsId": "1", "name": 5}, "name 5: expected text"),
        (
            {"goodsId": "1", "name": "M", "barcode": "4600000000016"},
            "barcode '4600000000016': bad EAN check digit 6, expected 5",
        ),
        ({"goodsId": "1", "name": "M", "barcode": "46000000"}, "bad EAN check digit 0, expected"),
        (
            {"goodsId": "1", "name": "M", "barcode": "4600 0000 00015"},
            "expected digits only",
        ),
        ({"goodsId": "1", "name": "M", "barcode": "4.6E+12"}, "expected digits only"),
        ({"goodsId": "1", "name": "M", "barcode": "123456789"}, "has 9 digits, expected 8, 12, 13"),
        (
            {"goodsId": "1", "name": "M", "barcode": 4600000000015},
            "expected the barcode as text (a JSON number loses leading zeros)",
        ),
        ({"goodsId": "1", "name": "M", "price": "-1.00"}, "price '-1.00': is negative"),
        ({"goodsId": "1", "name": "M", "price": Decimal("-1")}, "price -1: is negative"),
        ({"goodsId": "1", "name": "M", "price": "1.005"}, "has more than 2 decimals"),
        ({"goodsId": "1", "name": "M", "price": "1 000,00"}, "expected an amount such as 89.90"),
        ({"goodsId": "1", "name": "M", "price": "1e3"}, "expected an amount such as 89.90"),
        ({"goodsId": "1", "name": "M", "price": "NaN"}, "expected an amount such as 89.90"),
        ({"goodsId": "1", "name": "M", "price": "9" * 16}, "is out of range"),
        ({"goodsId": "1", "name": "M", "price": True}, "price True: expected an amount"),
        ({"goodsId": "1", "name": "M", "price": [1]}, "price [1]: expected an amount"),
    ],
)
def test_each_fault_is_named_with_row_field_value_and_expectation(
    fields: dict[str, object], message: str
) -> None:
    item, errors = check(**fields)
    assert item is None
    assert any(message in e for e in errors), errors


def test_every_fault_of_a_row_is_reported_at_once() -> None:
    _, errors = check(goodsId="", name="", barcode="1", price="x")
    assert [e.split(":")[0] for e in errors] == ["row 1 (line 2)"] * 4
    assert {e.split(": ")[1].split()[0] for e in errors} == {"goodsId", "name", "barcode", "price"}


def test_long_values_are_shortened_in_messages() -> None:
    _, errors = check(goodsId="1", name="M", price="9" * 200)
    assert len(errors[0]) < 200 and "…" in errors[0]


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_stdnum_valid_barcodes_are_accepted(n: int) -> None:
    body = f"{n:012d}"
    code = body + ean.calc_check_digit(body)
    item, errors = check(goodsId="1", name="M", barcode=code)
    assert errors == [] and item is not None and item.barcode == code
    wrong = body + str((int(code[-1]) + 1) % 10)
    assert check(goodsId="1", name="M", barcode=wrong)[0] is None


@given(st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2, allow_nan=False))
def test_any_two_decimal_price_survives_as_is(price: Decimal) -> None:
    item, errors = check(goodsId="1", name="M", price=str(price))
    assert errors == [] and item is not None and item.price == price


# ------------------------------------------------------------------ files


def test_csv_with_bom_semicolons_and_header_spellings(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffGoods_ID;Barcode;Name;Group;Price\r\n"
        '1001;4600000000015;"Молоко; 3,2%";dairy;89,90\r\n'
        "\r\n"
        "1002;;Хлеб;;55\r\n".encode()
    )
    rows = list(read_rows(path))
    assert [r.fields["goodsId"] for r in rows] == ["1001", "1002"]
    assert rows[0].fields["name"] == "Молоко; 3,2%"
    assert [r.number for r in rows] == [1, 2] and [r.line for r in rows] == [2, 4]


def test_csv_row_with_wrong_cell_count_is_a_row_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "g.csv", [["1", "", "Milk", "", "1"], ["2", "", "Bread"]])
    _, errors = stage(tmp_path, path)
    assert [str(e) for e in errors] == [
        "row 2 (line 3): has 3 cells, the header has 5 (delimiter ','; check quoting)"
    ]


def test_quoted_line_breaks_keep_line_numbers_right(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text('goodsId,name,price\n1,"two\nlines",1\n2,Bread,x\n')
    _, errors = stage(tmp_path, path)
    assert "row 1 (line 2): name 'two\\nlines': contains control characters" in str(errors[0])
    assert str(errors[1]).startswith("row 2 (line 4): price 'x'")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"sku,name\n", "unknown column 'sku'; expected: goodsId, barcode, name, group, price"),
        (b"goodsId,price\n", "header lacks name"),
        (b"goodsId,name,goods_id\n", "column 'goodsId' appears twice"),
        ("goodsId,name\n1,Молоко\n".encode("cp1251"), "not UTF-8 text (byte 0xcc)"),
        (b'goodsId,name\n1,"unterminated\n' + b"x" * 140_000 + b"\n", "CSV syntax error"),
    ],
)
def test_file_level_faults_are_source_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "g.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError) as exc:
        list(read_rows(path))
    assert message in str(exc.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        list(read_rows(tmp_path / "nope.csv"))
    with pytest.raises(SourceError, match="is a directory"):
        list(read_rows(tmp_path))


def test_json_lines_each_line_judged_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text(
        '{"goodsId": 1001, "name": "Milk", "price": 89.90}\n'
        "\n"
        '{"goodsId": "1002", "name": "Bread", "prce": 1}\n'
        '{"goodsId": "1003", "name": \n'
        "[1, 2]\n"
        '{"goods_id": "1004", "name": "Kefir", "price": "70"}\n'
    )
    catalogue, errors = stage(tmp_path, path)
    assert [str(e) for e in errors] == [
        "row 2 (line 3): prce: unknown field; expected: goodsId, barcode, name, group, price",
        "row 3 (line 4): not valid JSON: Expecting value (column 29)",
        "row 4 (line 5): is a JSON list, expected an object",
    ]
    assert catalogue.valid == 2
    catalogue.plan(full=False)
    items = [p.item for p in catalogue.pending()]
    assert [(i.goods_id, i.price) for i in items] == [
        ("1001", Decimal("89.90")),
        ("1004", Decimal("70")),
    ]


def test_json_array_streams_across_buffer_boundaries(tmp_path: Path) -> None:
    items = [
        {"goodsId": f"G{n}", "barcode": barcode(n), "name": "Товар " + "x" * (n % 300), "price": n}
        for n in range(3000)
    ]
    path = tmp_path / "g.json"
    path.write_text(json.dumps(items, ensure_ascii=False, indent=2))
    assert path.stat().st_size > 4 * 64 * 1024
    rows = list(read_rows(path))
    assert [r.fields for r in rows] == items
    assert rows[1].line == 8  # indent=2: six lines per item after the opening bracket


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"goodsId": "1", "name": "M"}', "file ends inside the JSON array"),
        ('[{"goodsId": "1", "name": "M"},\n,{}]', "line 2: unexpected ','"),
        ('[{"goodsId": "1"} {"goodsId": "2"}]', "expected ',' or ']' between items"),
        ('[{"goodsId": "1", "name": }]', "line 1: not valid JSON: Expecting value"),
        ('[{"goodsId": "1", "name": "M"}] trailing', "text after the end of the JSON array"),
        ('{"items": []}', "expected a JSON array"),
        ('{"goods": [{"goodsId": "1", "name": "M"}], "replace": }', "broken JSON after the goods"),
        ('{"goods": [{"goodsId": "1", "name": "M"}]} x', "broken JSON after the goods"),
    ],
)
def test_broken_json_array_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(text)
    if text.startswith('{"items"'):  # a .json file holding one object is read as JSON lines
        with pytest.raises(SourceError, match=message):
            list(read_rows(path, "json"))
        return
    with pytest.raises(SourceError) as exc:
        list(read_rows(path))
    assert message in str(exc.value)


def test_the_import_request_shape_is_read_as_a_json_array(tmp_path: Path) -> None:
    items = [{"goodsId": f"G{n}", "name": f"Item {n}", "price": n} for n in range(5)]
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"goods": items, "replace": True}, indent=2))
    assert [r.fields for r in read_rows(path)] == items
    path.write_text(json.dumps({"goods": items}))
    assert [r.fields for r in read_rows(path)] == items


def test_duplicate_goods_ids_leave_both_rows_out(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "g.csv",
        [
            ["1", "", "Milk", "", "1"],
            ["2", "", "Bread", "", "2"],
            ["1", "", "Milk 2", "", "3"],
            ["1", "", "Milk 3", "", "4"],
        ],
    )
    catalogue, errors = stage(tmp_path, path)
    assert [str(e) for e in errors] == [
        "row 3 (line 4): goodsId '1': duplicate goodsId, also on row 1 (line 2);"
        " each goodsId may appear once, both rows are left out",
        "row 4 (line 5): goodsId '1': duplicate goodsId, also on row 1 (line 2);"
        " each goodsId may appear once, both rows are left out",
    ]
    assert (catalogue.valid, catalogue.invalid) == (1, 3)
    catalogue.plan(full=False)
    assert [p.item.goods_id for p in catalogue.pending()] == ["2"]


names = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s != "")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(names, st.integers(0, 10**6)), min_size=1, max_size=30))
def test_the_same_items_read_alike_from_csv_json_and_jsonl(
    tmp_path: Path, rows: list[tuple[str, int]]
) -> None:
    items = [
        {
            "goodsId": f"G{i}",
            "barcode": barcode(i),
            "name": n,
            "group": "g",
            "price": f"{c / 100:.2f}",
        }
        for i, (n, c) in enumerate(rows)
    ]
    write_csv(tmp_path / "g.csv", ([*it.values()] for it in items), header=list(items[0]))
    (tmp_path / "g.json").write_text(json.dumps(items, ensure_ascii=False))
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(it) for it in items))
    for name in ("g.csv", "g.json", "g.jsonl"):
        got = [validate(r) for r in read_rows(tmp_path / name)]
        assert [e for _, e in got if e] == []
        wire = [i.wire().model_dump(by_alias=True, mode="json") for i, _ in got if i is not None]
        assert wire == items, name


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=300),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=2),
)


@given(st.dictionaries(st.sampled_from(["goodsId", "barcode", "name", "group", "price"]), anything))
def test_validation_never_crashes_and_what_passes_is_a_valid_wire_item(
    fields: dict[str, object],
) -> None:
    item, errors = validate(RawRow(1, 2, fields))
    assert (item is None) == bool(errors)
    if item is not None:
        wire = item.wire()
        assert GoodsItem.model_validate(loads(encode(wire))) == wire


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["g.csv", "g.json", "g.jsonl"]),
    st.one_of(
        st.binary(max_size=400),
        st.text(alphabet='{}[]",:; \n\r\tabc019goodsIdname\\', max_size=400).map(str.encode),
    ),
)
def test_any_bytes_give_rows_or_a_source_error(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    try:
        for raw in read_rows(path):
            validate(raw)
    except SourceError as exc:
        assert str(exc).startswith(str(path))
