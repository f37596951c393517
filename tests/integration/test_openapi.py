"""The OpenAPI 3.1 document: valid (openapi-spec-validator), generated from the route table and the wire models,
in step with the routes the app really serves, served at /openapi.json, and rendered offline at /docs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from openapi_spec_validator import validate

from paychan_common import messages as msg
from paychan_common.state import Family
from paychan_server.api.openapi import render_html
from paychan_server.api.openapi_doc import build_document
from paychan_server.api.routes import HOT_ROUTES, ROUTES
from tests.support.stack import Stack


def _shape(path: str) -> str:
    """A path template with its parameter names erased."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_document_is_valid_openapi_3() -> None:
    doc = build_document()
    validate(doc)  # raises on any violation
    assert doc["openapi"].startswith("3.")
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_every_served_route_is_documented_and_back(stack: Stack) -> None:
    served = set()
    for resource in stack.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        for route in resource:
            if route.method != "HEAD":
                served.add((route.method.lower(), _shape(str(path))))
    doc = build_document()
    documented = {(method, _shape(path)) for path, item in doc["paths"].items() for method in item}
    assert served == documented


async def test_served_document_and_docs_page(stack: Stack) -> None:
    r = await stack.public.get("/openapi.json")
    assert r.status == 200 and r.content_type == "application/json"
    assert await r.json() == build_document()
    r = await stack.public.get("/docs")
    assert r.status == 200 and r.content_type == "text/html"
    page = await r.text()
    for path in build_document()["paths"]:
        assert path.replace("{", "&#x7b;") in page or path in page


class _Assets(HTMLParser):
    """Collects every external reference of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, val in attrs:
            if name in ("src", "href") and val and re.match(r"^(https?:)?//", val):
                self.external.append(val)


def test_docs_page_is_self_contained() -> None:
    page = render_html(build_document())
    parser = _Assets()
    parser.feed(page)
    assert parser.external == []
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "v23Pay" in page and "PaymentResult" in page


def test_schemas_are_the_wire_models() -> None:
    """Generated, not hand-written: each schema's fields are its model's, and every route documents the model
    of its row in the route table (v1 results as the v1 projection)."""
    schemas = build_document()["components"]["schemas"]
    for model in (msg.ErrorBody, msg.FundingInfo, msg.FundingInfoV1, msg.PaymentResult, msg.PaymentBody,
                  msg.ChannelLocation):
        assert list(schemas[model.__name__]["properties"]) == list(model.model_fields)
    assert list(schemas["PaymentResultV1"]["properties"]) == list(msg.V1_RESULT_FIELDS)
    doc = build_document()
    for r in ROUTES:
        if r.response is None:
            continue
        ref = doc["paths"][r.path][r.method.lower()]["responses"][str(r.status)]["content"]["application/json"]
        v1_result = r.family is Family.V1 and r.response is msg.PaymentResult
        name = "PaymentResultV1" if v1_result else r.response.__name__
        assert ref["schema"]["$ref"].endswith("/" + name)


def test_hot_routes_come_from_the_table() -> None:
    assert ("PUT", "/v2/channels/{txid}/{vout}") in HOT_ROUTES and ("*", "/health") in HOT_ROUTES
    assert {path for _, path in HOT_ROUTES} == {r.path for r in ROUTES if r.hot}
