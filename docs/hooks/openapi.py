"""MkDocs hook: pages generated from the code at every build, so they never go stale.

- ``http-api.md`` and ``api/openapi.json`` from ``create_app().openapi()``
  (``mkdocs build --strict`` fails if the app cannot be created). Nothing is loaded from a
  CDN: the page is plain Markdown, and the schema is offered as a file to open in any OpenAPI
  viewer (or see ``/docs`` of a running service, whose Swagger UI is served locally).
- The table of the files ``gis-grid load`` reads, from :data:`gis_grid.sample.LAYERS`, in
  place of the ``<!-- gis-grid-layers -->`` marker of a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

__all__ = ["LAYERS_MARKER", "layers_table", "on_files", "on_page_markdown", "render"]

#: Replaced by :func:`layers_table` in any page.
LAYERS_MARKER = "<!-- gis-grid-layers -->"

_METHODS = ("get", "post", "put", "patch", "delete")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")

_INTRO = """# HTTP API

Generated from the service's OpenAPI schema (`create_app().openapi()`) when these pages are
built, so it lists exactly the routes of this version. The schema itself:
[openapi.json](api/openapi.json) (OpenAPI {openapi}); a running service shows the same in its
interactive Swagger UI at `http://127.0.0.1:8000/docs`, served locally.

Common rules: every route but `/health` and the login needs a bearer token from
`POST /api/v1/auth/login` (or the session cookie of the login page), and the caller's role
decides what it may read and change ([security](security.md)); the signed-in user is kept
in the histories and the audit log. Versioned objects (grids) answer with an `ETag` and take
it back in `If-Match` (a missing header is **428**, a stale one **412**); errors are
`{{"detail", "error", "problems"?}}` with a 4xx status naming the field, feature or
coordinate at fault. Coordinates are CGCS2000 lon/lat
(EPSG:4490) unless a `datum` (`wgs84`, `cgcs2000`, `gcj02`, `bd09`) says otherwise.

{description}
"""


def _plain(text: str | None) -> str:
    """Markdown of a description with its links turned into text (they point into the app)."""
    return _LINK.sub(r"\1 (`\2`)", (text or "").strip())


def _cell(text: str | None) -> str:
    """One table cell: a single line, pipes escaped."""
    return " ".join(_plain(text).split()).replace("|", "\\|")


def _type(schema: Mapping[str, Any] | None) -> str:
    """Name the type of a JSON schema shortly: ``string``, ``Grid``, ``integer or null``..."""
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(_type(s) for s in schema[key]))
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = str(schema.get("type", "object"))
    if kind == "array":
        return f"array of {_type(schema.get('items'))}"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else kind


def _parameters(parameters: Sequence[Mapping[str, Any]]) -> list[str]:
    if not parameters:
        return []
    lines = ["| parameter | in | required | type | description |", "|---|---|---|---|---|"]
    for p in parameters:
        required = "yes" if p.get("required") else ""
        description = p.get("description") or p.get("schema", {}).get("description")
        lines.append(
            f"| `{p['name']}` | {p['in']} | {required} | {_type(p.get('schema'))} "
            f"| {_cell(description)} |"
        )
    return ["", *lines]


def _body(body: Mapping[str, Any] | None) -> list[str]:
    if not body:
        return []
    kinds = [f"`{media}` {_type(c.get('schema'))}" for media, c in body.get("content", {}).items()]
    required = " (required)" if body.get("required") else ""
    return ["", f"**Request body**{required}: {', '.join(kinds)}"]


def _responses(responses: Mapping[str, Any]) -> list[str]:
    lines = ["", "| status | meaning |", "|---|---|"]
    lines += [f"| {code} | {_cell(r.get('description'))} |" for code, r in responses.items()]
    return lines


def render(schema: Mapping[str, Any]) -> str:
    """Render an OpenAPI schema as one Markdown page: routes grouped by tag.

    Parameters
    ----------
    schema
        The OpenAPI document (``app.openapi()``).

    Returns
    -------
    str
        Markdown.
    """
    info = schema.get("info", {})
    description = _plain(info.get("description"))
    out = [_INTRO.format(openapi=schema.get("openapi", "3"), description=description)]
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                operation = item[method]
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method, path, operation))
    for tag, operations in by_tag.items():
        out.append(f"## {tag}\n")
        for method, path, operation in operations:
            summary = operation.get("summary", "")
            out.append(f"### `{method.upper()} {path}`\n\n{summary}\n")
            if operation.get("description"):
                out.append(_plain(operation["description"]) + "\n")
            lines = _parameters(operation.get("parameters", []))
            lines += _body(operation.get("requestBody"))
            lines += _responses(operation.get("responses", {}))
            out.append("\n".join(lines).strip() + "\n")
    return "\n".join(out)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add ``http-api.md`` and ``api/openapi.json``, generated from the app, to the site.

    Parameters
    ----------
    files, config
        As MkDocs passes them.

    Returns
    -------
    mkdocs.structure.files.Files
        ``files`` with the two generated files.
    """
    from api.app import create_app

    schema = create_app().openapi()
    text = json.dumps(schema, ensure_ascii=False, indent=1)
    files.append(File.generated(config, "api/openapi.json", content=text))
    files.append(File.generated(config, "http-api.md", content=render(schema)))
    return files


def layers_table() -> str:
    """Markdown table of the layers ``gis-grid load`` reads: file, fields, geometry, table.

    Returns
    -------
    str
        One row per layer of :data:`gis_grid.sample.LAYERS`.
    """
    from gis_grid.sample import LAYERS

    lines = [
        "| file | required | geometry | required fields | optional fields | table |",
        "|---|---|---|---|---|---|",
    ]
    for layer in LAYERS.values():
        geometry = ", ".join(layer.geometry) if layer.geometry else "(CSV, none)"
        fields = ", ".join(f"`{f}`" for f in layer.fields)
        optional = ", ".join(f"`{f}`" for f in layer.optional)
        required = "**yes**" if layer.required else ""
        lines.append(
            f"| `{layer.file}` | {required} | {geometry} | {fields} | {optional} "
            f"| `{layer.table}` |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace :data:`LAYERS_MARKER` with :func:`layers_table`.

    Parameters
    ----------
    markdown
        The page's Markdown.
    **_
        ``page``, ``config`` and ``files``, as MkDocs passes them (unused).

    Returns
    -------
    str
        The page with the table.
    """
    if LAYERS_MARKER not in markdown:
        return markdown
    return markdown.replace(LAYERS_MARKER, layers_table())
