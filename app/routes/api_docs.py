"""The API documentation at ``/schema``: the OpenAPI document (``/schema/openapi.json``, which
Litestar serves beside any render plugin) and one page that shows it with Swagger UI.

Litestar's own render plugins (Scalar, Swagger, Redoc, Stoplight, RapiDoc) each write an inline
``<script>`` and, by default, load their bundle, fonts and favicon from CDNs; ``js_url`` moves the
bundle but not the inline script, which our CSP (``script-src 'self'``) refuses. This plugin
renders a template instead: the vendored bundle and the small script that starts it come from
``/static`` (see ``app/static/vendor/README.md``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin


class ApiDocsPage(OpenAPIRenderPlugin):
    """Swagger UI from our own origin, at the root of the OpenAPI path."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        template = request.app.template_engine.get_template("api_docs.html")  # type: ignore[union-attr]
        page: str = template.render(
            request=request,
            title=openapi_schema["info"]["title"],
            spec_url=self.get_openapi_json_route(request),
        )
        return page.encode()
