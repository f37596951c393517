"""The OpenAPI document as served: its JSON bytes for `GET /openapi.json`, and a self-contained HTML rendering
for `GET /docs` (inline CSS, no script, no external asset: it works offline)."""

from __future__ import annotations

import html
from typing import Any

import orjson
from aiohttp import web

from .meta import DOCS_PAGE, OPENAPI_BODY

__all__ = ["publish_document", "render_html"]

Json = dict[str, Any]
METHODS = ("get", "post", "put", "delete", "options")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:70rem;color:#222;
padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;font-weight:600;
padding:.1rem .4rem;margin-right:.6rem;font-size:.85rem}
.get{background:#2b7bb9}.post{background:#2f9e44}.put{background:#d9822b}.delete{background:#c92a2a}
.options{background:#777}
code,.path{font-family:ui-monospace,Menlo,Consolas,monospace}.path{font-weight:600}
table{border-collapse:collapse;margin:.4rem 0;font-size:.9rem}td,th{border:1px solid #e3e3e3;
padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f6f6f6}.muted{color:#777}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _schema_text(schema: Json) -> str:
    """A one-line summary of a schema."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{_esc(name)}">{_esc(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_schema_text(sub) for sub in schema["anyOf"])
    parts = [_esc(schema.get("type", "any"))]
    for key in ("enum", "pattern", "minimum", "maximum"):
        if key in schema:
            parts.append(f'<span class="muted">{key}: <code>{_esc(schema[key])}</code></span>')
    return " ".join(parts)


def _operation(path: str, method: str, op: Json) -> str:
    out = [f'<div class="op" id="{_esc(op.get("operationId", ""))}"><span class="m {method}">{method.upper()}'
           f'</span><span class="path">{_esc(path)}</span><p>{_esc(op.get("summary", ""))}</p>']
    params = op.get("parameters") or []
    if params:
        out.append("<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>")
        for p in params:
            out.append(f"<tr><td><code>{_esc(p['name'])}</code></td><td>{_esc(p['in'])}</td>"
                       f"<td>{'yes' if p.get('required') else 'no'}</td><td>{_schema_text(p.get('schema', {}))}</td>"
                       f"<td>{_esc(p.get('description', ''))}</td></tr>")
        out.append("</table>")
    body = op.get("requestBody")
    if body:
        for ctype, media in body.get("content", {}).items():
            out.append(f"<p>Request body <code>{_esc(ctype)}</code>: {_schema_text(media.get('schema', {}))}</p>")
    out.append("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
    for status, resp in op.get("responses", {}).items():
        content = resp.get("content") or {}
        bodies = ", ".join(f"<code>{_esc(ct)}</code> {_schema_text(m.get('schema', {}))}" for ct, m in content.items())
        out.append(f"<tr><td>{_esc(status)}</td><td>{_esc(resp.get('description', ''))}</td><td>{bodies}</td></tr>")
    out.append("</table></div>")
    return "".join(out)


def _schema_section(name: str, schema: Json) -> str:
    out = [f'<div class="op" id="schema-{_esc(name)}"><span class="path">{_esc(name)}</span>'
           f"<p>{_esc(schema.get('description', ''))}</p>"
           "<table><tr><th>field</th><th>required</th><th>schema</th><th>description</th></tr>"]
    required = set(schema.get("required", []))
    for field, sub in schema.get("properties", {}).items():
        out.append(f"<tr><td><code>{_esc(field)}</code></td><td>{'yes' if field in required else 'no'}</td>"
                   f"<td>{_schema_text(sub)}</td><td>{_esc(sub.get('description', ''))}</td></tr>")
    out.append("</table></div>")
    return "".join(out)


def render_html(doc: Json) -> str:
    """The document as one HTML page, operations grouped by tag."""
    info = doc.get("info", {})
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             f"<title>{_esc(info.get('title', 'API'))}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_esc(info.get('title', 'API'))} <span class=muted>{_esc(info.get('version', ''))}</span></h1>",
             f"<p>{_esc(info.get('description', ''))}</p>",
             '<p>Machine-readable: <a href="/openapi.json"><code>/openapi.json</code></a> (OpenAPI '
             f"{_esc(doc.get('openapi', ''))})</p>"]
    for tag in doc.get("tags", []):
        ops = [(path, method, op) for path, item in doc.get("paths", {}).items()
               for method, op in item.items() if method in METHODS and tag["name"] in op.get("tags", [])]
        if not ops:
            continue
        parts.append(f"<h2>{_esc(tag['name'])}</h2><p>{_esc(tag.get('description', ''))}</p>")
        parts += [_operation(path, method, op) for path, method, op in ops]
    parts.append("<h2>Schemas</h2>")
    parts += [_schema_section(n, s) for n, s in doc.get("components", {}).get("schemas", {}).items()]
    parts.append("</body></html>")
    return "".join(parts)


def publish_document(app: web.Application, doc: Json) -> None:
    """Render the document once into the app, for GET /openapi.json and GET /docs (`meta.py`)."""
    app[OPENAPI_BODY] = orjson.dumps(doc)
    app[DOCS_PAGE] = render_html(doc).encode()
