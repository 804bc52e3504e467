"""/openapi.json as the server really behaves: Bearer auth, no 422s (validation is 400), error bodies.

FastAPI documents a 422 `HTTPValidationError` for every route with parameters; DreamRelay answers 400
with its own error body instead. Every operation gets a `default` response with the error body of its
family: `{"detail": ...}` under /dream-machine/v1 and /agents/v1, `{"error": {...}}` everywhere else.
Only the Agents API answers 422 (with `{"detail"}`), for combinations of fields it refuses.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from dreamrelay.domain.json_object import JsonObject
from dreamrelay.formats.families import errors_for
from dreamrelay.http.schemas.ark import ArkErrorBody
from dreamrelay.http.schemas.official import Detail
from dreamrelay.http.schemas.own import ErrorBody
from dreamrelay.http.schemas.videos import OpenAIErrorBody

# No API key: a presigned upload's token (or signature) is in its URL.
PUBLIC_PATHS = (
    "/",
    "/healthz",
    "/readyz",
    "/media/{key}",
    "/media/uploads/{name}",
    "/agents/v1/uploads/{file_id}",
)


def install(app: FastAPI) -> None:
    def build() -> JsonObject:
        if app.openapi_schema is None:
            app.openapi_schema = _truthful(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _truthful(schema: JsonObject) -> JsonObject:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (Detail, ErrorBody, OpenAIErrorBody, ArkErrorBody):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A DreamRelay API key (dr-…); the admin API takes the admin token.",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        style = errors_for(path)
        error = style.schema
        for operation in operations.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schemas.update(content.get("schema", {}).pop("$defs", {}))
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}}
            responses["default"] = {"description": "Error", "content": body}
            if style.refuses_combinations:
                responses["422"] = {"description": "A combination of fields the API refuses", "content": body}
            if path not in PUBLIC_PATHS:
                operation["security"] = [{"bearer": []}]
    return schema
