"""Nomenclature upload: per-item rejections, replace, immediate effect on pricing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.wire import Api, D, line, parse

IMPORT = "/v1.2/Goods/Import"


def _import(api: Api, goods: list[Any], replace: bool = False) -> httpx.Response:
    return api.raw(IMPORT, {"goods": goods, "replace": replace})


def test_import_accepts_good_items_and_names_each_rejection(api: Api) -> None:
    response = _import(
        api,
        [
            {
                "goodsId": "7001",
                "barcode": "4600000000077",
                "name": "Yoghurt",
                "group": "dairy",
                "price": D("55.00"),
            },
            {"goodsId": "7002", "name": "Bun", "group": "bakery"},
            {"goodsId": "7003", "barcode": "4600000000078", "name": "Bad check digit"},
            {"goodsId": "7001", "name": "Twice"},
            {"goodsId": "7004", "name": "Negative", "price": D("-1.00")},
            {"name": "No id"},
            "not an object",
        ],
    )
    assert response.status_code == 200
    answer = parse(response)
    assert (answer["code"], answer["accepted"]) == ("Ok", 2)
    errors = [(r.get("goodsId"), r["error"]) for r in answer["rejected"]]
    assert len(errors) == 5
    assert "barcode" in errors[0][1] and errors[0][0] == "7003"
    assert "duplicate" in errors[1][1] and errors[1][0] == "7001"
    assert "goods[4].price" in errors[2][1] and errors[2][0] == "7004"
    assert errors[3] == (None, "goods[5].goodsId: Field required")
    assert errors[4][0] is None and errors[4][1].startswith("goods[6]: ")
    # applied at once: the new dairy item accrues 5 %, and is not an unknown good
    calc = api.calculate("p-new", [line(1, "7001", "100.00")])
    assert calc["cheque"]["totalCashback"] == D("5.00")
    assert api.status()["unknownGoods"] == 0


def test_replace_swaps_the_whole_catalogue(api: Api) -> None:
    answer = parse(_import(api, [{"goodsId": "8001", "name": "Only", "group": "tobacco"}], True))
    assert answer["accepted"] == 1
    api.calculate("p-r", [line(1, "1001", "100.00"), line(2, "8001", "100.00")])
    status = api.status()
    assert status["unknownGoodsIds"] == ["1001"]  # milk is gone from the catalogue
    calc = api.calculate("p-r", [line(1, "8001", "100.00")])
    assert calc["cheque"]["totalCashback"] == D("0.00")  # tobacco 0 %


def test_import_limits_and_auth(api: Api) -> None:
    too_many = [{"goodsId": str(i), "name": "x"} for i in range(1001)]
    response = _import(api, too_many)
    assert response.status_code == 400
    assert "1000" in parse(response)["errorMessage"]
    assert api.raw(IMPORT, {"goods": "none"}).status_code == 400
    extra = api.raw(IMPORT, {"goods": [], "replace": False, "other": 1})
    assert extra.status_code == 400
    assert "other" in parse(extra)["errorMessage"]
    anonymous = httpx.post(api.server.url + IMPORT, content=b'{"goods": []}')
    assert anonymous.status_code == 401
    assert api.status()["byOperation"]["goods_import"] == 4  # the 401 too


def test_full_chunk_is_accepted(api: Api) -> None:
    chunk = [{"goodsId": f"g{i}", "name": f"item {i}", "price": D("1.00")} for i in range(1000)]
    answer = parse(_import(api, chunk))
    assert (answer["accepted"], answer["rejected"]) == (1000, [])


def test_replace_with_nothing_valid_keeps_the_catalogue(api: Api) -> None:
    answer = parse(_import(api, [{"goodsId": "x", "name": "bad", "barcode": "123"}], True))
    assert (answer["accepted"], len(answer["rejected"])) == (0, 1)
    assert "not replaced" in answer["errorMessage"]
    api.calculate("p-keep", [line(1, "1001", "100.00")])
    assert api.status()["unknownGoods"] == 0
