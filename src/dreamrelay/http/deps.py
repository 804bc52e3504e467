"""Dependencies shared by routes: the runtime, the authenticated caller, parsed JSON bodies."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, ValidationError

from dreamrelay.domain.errors import InvalidRequest, RateLimited
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.http.errors import described
from dreamrelay.runtime import Runtime
from dreamrelay.services import limits
from dreamrelay.services.auth import Caller, authenticate
from dreamrelay.services.idempotency import Idempotency

Model = TypeVar("Model", bound=BaseModel)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain-def dependency in a worker thread, on every request.
    return get_runtime(request)


async def current_caller(request: Request) -> Caller:
    """The authenticated key, after its requests-per-minute bucket let this request through."""
    return await _admitted(request, batch=False)


async def batch_caller(request: Request) -> Caller:
    """Batch queries also draw from their own, smaller bucket (in the same single check)."""
    return await _admitted(request, batch=True)


async def _admitted(request: Request, *, batch: bool) -> Caller:
    rt = get_runtime(request)
    caller = await authenticate(rt, request.headers.get("authorization"))
    try:
        shown = await limits.admit(rt, caller, batch=batch)
    except RateLimited as exc:
        request.state.ratelimit_headers = exc.headers
        raise
    if shown is not None:
        request.state.ratelimit_headers = shown
    return caller


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
# Paging of every list route; the offset cap keeps it within a database integer.
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Skip this many items first.")]
CallerDep = Annotated[Caller, Depends(current_caller)]
BatchCallerDep = Annotated[Caller, Depends(batch_caller)]


async def read_json(request: Request) -> Any:
    """The body as JSON whatever the Content-Type says (some clients send text/plain)."""
    return decode_json(await request.body())


def decode_json(raw: bytes) -> Any:
    """A request body's JSON; 400 when it is not JSON or a string in it holds a NUL."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("the request body must be valid JSON") from exc
    if b"\\u0000" in raw and _holds_nul(data):
        raise InvalidRequest("strings in the request body must not contain NUL characters")
    return data


def _holds_nul(value: Any) -> bool:
    """A NUL character in any string or key (no database column can hold one)."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    if isinstance(value, dict):
        return any("\0" in k or _holds_nul(v) for k, v in value.items())
    return False


async def parse_body(request: Request, model: type[Model]) -> Model:
    return validated(model, await read_json(request))


async def parse_submission(
    request: Request, model: type[Model], operation: str
) -> tuple[Model, Idempotency | None]:
    """A create request's body and its Idempotency-Key, fingerprinted from the same parsed JSON."""
    return submission(await request.body(), request.headers.get("idempotency-key"), model, operation)


def submission(
    raw: bytes, idempotency_key: str | None, model: type[Model], operation: str
) -> tuple[Model, Idempotency | None]:
    """`parse_submission` of a body already read (the lean submit path reads it itself)."""
    data = decode_json(raw)
    body = validated(model, data)
    return body, Idempotency.from_header(idempotency_key, operation, data)


def validated(model: type[Model], data: Any) -> Model:
    """`data` (parsed JSON) as `model`; 400 with the first few errors otherwise."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from exc


def describe(exc: ValidationError) -> str:
    return described(exc.errors())


def json_body_doc(model: type[BaseModel]) -> JsonObject:
    """OpenAPI requestBody for routes that parse their body themselves (http/openapi.py hoists $defs)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
