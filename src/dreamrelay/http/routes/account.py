"""The customer's own account, with their API key: balance, ledger, callback secret, deliveries,
their keys (self-service), credit-code redemption and the list of their tasks."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from dreamrelay.domain.errors import InvalidRequest, NotFound
from dreamrelay.domain.ids import ascii_int, shown
from dreamrelay.http.answers import JsonObject, json_list, json_of
from dreamrelay.http.deps import CallerDep, Limit, Offset, RuntimeDep, json_body_doc, parse_body, read_json
from dreamrelay.http.schemas.account import NewOwnKey, OwnKeyChange, Redeem
from dreamrelay.services import account_keys, admin, credit_codes, reads

router = APIRouter(prefix="/account", tags=["account"])


@router.get("", summary="The caller's account and balance")
async def show(rt: RuntimeDep, caller: CallerDep) -> JsonObject:
    found = await admin.show_account(rt, caller.account_id)
    return {
        "name": found.name,
        "balance": found.balance,
        "created_at": found.created_at,
        "tasks": found.tasks,
        "in_flight": found.in_flight,
    }


@router.get("/ledger", summary="The caller's ledger, newest first")
async def ledger(
    rt: RuntimeDep,
    caller: CallerDep,
    task_id: str | None = None,
    kind: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JsonObject]:
    return await admin.ledger_entries(
        rt, account=caller.account_id, task_id=task_id, kind=kind, limit=limit, offset=offset
    )


@router.get("/callback_secret", summary="The secret callbacks to this account are signed with")
async def callback_secret(rt: RuntimeDep, caller: CallerDep) -> JsonObject:
    return json_of(await admin.callback_secret(rt, caller.account_id))


@router.post("/callback_secret/rotate", summary="A new signing secret; the old one signs on for a grace")
async def rotate_callback_secret(rt: RuntimeDep, caller: CallerDep) -> JsonObject:
    return json_of(await admin.callback_secret(rt, caller.account_id, rotate=True))


@router.get("/deliveries", summary="Callback deliveries of the caller's tasks, with every attempt")
async def deliveries(
    rt: RuntimeDep,
    caller: CallerDep,
    task_id: str | None = None,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JsonObject]:
    return await admin.deliveries(
        rt,
        account=caller.account_id,
        task_id=task_id,
        status=status,
        limit=limit,
        offset=offset,
        with_attempts=True,
    )


# ---- keys (self-service) -----------------------------------------------------------------------
def _key_id(raw: str) -> int:
    """A key id from the path; anything else is the same 404 as a key of another account."""
    key_id = ascii_int(raw, max_digits=9)
    if key_id is None:
        raise NotFound(f"no key with id {shown(raw[:20])}", code="key_not_found")
    return key_id


@router.get("/keys", summary="The calling key and the keys below it (never the keys themselves)")
async def list_keys(rt: RuntimeDep, caller: CallerDep) -> list[JsonObject]:
    return json_list(await account_keys.list_keys(rt, caller))


@router.post(
    "/keys",
    status_code=201,
    openapi_extra=json_body_doc(NewOwnKey),
    summary="Create a key below the calling one (shown once); limits within the calling key's",
)
async def create_key(request: Request, rt: RuntimeDep, caller: CallerDep) -> JsonObject:
    body = await parse_body(request, NewOwnKey)
    return json_of(await account_keys.create_key(rt, caller, body.model_dump(exclude_unset=True)))


@router.patch(
    "/keys/{key_id}",
    openapi_extra=json_body_doc(OwnKeyChange),
    summary="Rename, disable, limit or restrict the calling key or a key below it",
)
async def update_key(request: Request, rt: RuntimeDep, caller: CallerDep, key_id: str) -> JsonObject:
    number = _key_id(key_id)
    body = await parse_body(request, OwnKeyChange)
    return json_of(await account_keys.update_key(rt, caller, number, body.model_dump(exclude_unset=True)))


@router.delete(
    "/keys/{key_id}", status_code=204, summary="Delete a key below the calling one, and the keys below it"
)
async def delete_key(rt: RuntimeDep, caller: CallerDep, key_id: str) -> Response:
    await account_keys.delete_key(rt, caller, _key_id(key_id))
    return Response(status_code=204)


# ---- credit codes ------------------------------------------------------------------------------
@router.post(
    "/redeem",
    openapi_extra=json_body_doc(Redeem),
    summary="Redeem a credit code: 404 unknown, 409 code_used, 410 expired, 429 too many attempts",
)
async def redeem(request: Request, rt: RuntimeDep, caller: CallerDep) -> JsonObject:
    client_ip = request.client.host if request.client else "?"
    body = await read_json(request)
    code = body.get("code") if isinstance(body, dict) else None
    return json_of(await credit_codes.redeem(rt, caller, code, client_ip=client_ip))


# ---- tasks -------------------------------------------------------------------------------------
TASK_STATES = ("pending", "processing", "completed", "failed")


@router.get("/tasks", summary="The account's video tasks, newest first (own format); filter by state")
async def list_tasks(
    rt: RuntimeDep, caller: CallerDep, state: str | None = None, limit: Limit = 100, offset: Offset = 0
) -> Response:
    states = tuple(s for s in (state or "").split(",") if s) or None
    if states is not None and (len(states) > len(TASK_STATES) or not set(states) <= set(TASK_STATES)):
        raise InvalidRequest(f"state: a comma-separated list of {', '.join(TASK_STATES)}")
    page, more = await reads.list_videos(rt, caller, limit=limit, offset=offset, states=states)
    body = b'{"data":[' + b",".join(t.body for t in page) + b'],"has_more":' + (b"true" if more else b"false")
    return Response(body + b"}", media_type="application/json")
