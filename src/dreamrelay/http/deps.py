"""Dependencies shared by routes: the runtime, the authenticated caller, parsed JSON bodies."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, ValidationError

from dreamrelay.domain.errors import InvalidRequest, RateLimited
from dreamrelay.ratelimit import NO_LIMIT, Decision, effective_limit
from dreamrelay.runtime import Runtime
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
    rt = get_runtime(request)
    caller = await authenticate(rt, request.headers.get("authorization"))
    await _spend(request, rt, _rpm_bucket(caller), effective_limit(caller.rpm, rt.settings.rate_limit_rpm))
    return caller


async def spend_rpm(rt: Runtime, caller: Caller) -> None:
    """Draw from the key's requests-per-minute bucket without X-RateLimit headers (the console's calls)."""
    decision = await _draw(rt, _rpm_bucket(caller), effective_limit(caller.rpm, rt.settings.rate_limit_rpm))
    if decision is not None:
        _refuse(decision)


def _rpm_bucket(caller: Caller) -> str:
    return f"rpm:{caller.key_id}"


async def batch_caller(request: Request, caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """Batch queries also draw from their own, smaller bucket."""
    rt = get_runtime(request)
    limit = effective_limit(caller.batch_rpm, rt.settings.rate_limit_batch_rpm)
    await _spend(request, rt, f"batch:{caller.key_id}", limit)
    return caller


async def _spend(request: Request, rt: Runtime, bucket: str, limit: int) -> None:
    decision = await _draw(rt, bucket, limit)
    if decision is None:
        return
    # Of several buckets, the headers show the one closest to running out.
    shown = getattr(request.state, "ratelimit_headers", None)
    headers = decision.headers()
    if shown is None or int(headers["X-RateLimit-Remaining"]) < int(shown["X-RateLimit-Remaining"]):
        request.state.ratelimit_headers = headers
    _refuse(decision)


async def _draw(rt: Runtime, bucket: str, limit: int) -> Decision | None:
    """One request from `bucket`; None when there is no limit."""
    return None if limit == NO_LIMIT else await rt.limiter.hit(bucket, limit)


def _refuse(decision: Decision) -> None:
    if not decision.allowed:
        raise RateLimited("rate limit reached for this API key; slow down", headers=decision.headers())


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
# Paging of every list route; the offset cap keeps it within a database integer.
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Skip this many items first.")]
CallerDep = Annotated[Caller, Depends(current_caller)]
BatchCallerDep = Annotated[Caller, Depends(batch_caller)]


async def read_json(request: Request) -> Any:
    """The body as JSON whatever the Content-Type says (some clients send text/plain)."""
    raw = await request.body()
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
    return _validated(model, await read_json(request))


async def parse_submission(
    request: Request, model: type[Model], operation: str
) -> tuple[Model, Idempotency | None]:
    """A create request's body and its Idempotency-Key, fingerprinted from the same parsed JSON."""
    data = await read_json(request)
    body = _validated(model, data)
    return body, Idempotency.from_header(request.headers.get("idempotency-key"), operation, data)


def _validated(model: type[Model], data: Any) -> Model:
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc)) from exc


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI requestBody for routes that parse their body themselves (http/openapi.py hoists $defs)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
