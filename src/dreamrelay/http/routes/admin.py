"""The operator's API under /admin, behind the admin token. Thin: each route calls services.admin."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from dreamrelay.domain.errors import InvalidApiKey, InvalidRequest, RateLimited
from dreamrelay.domain.ranges import MAX_INT32_ID, MAX_TIMESTAMP
from dreamrelay.http.answers import JsonObject, json_list, json_of
from dreamrelay.http.deps import Limit, Offset, RuntimeDep, get_runtime, json_body_doc, parse_body
from dreamrelay.http.schemas.admin import (
    AccountChange,
    BalanceChange,
    ChannelChange,
    KeyLimits,
    NewAccount,
    NewChannel,
    NewCodes,
    NewKey,
    PriceKey,
    PriceRule,
    Replay,
)
from dreamrelay.services import admin, channel_admin, credit_codes
from dreamrelay.services.auth import parse_bearer, sign_in_attempt


async def require_admin(request: Request) -> None:
    """The admin token, throttled like the console sign-in: wrong tokens use up the client address's
    attempts (shared with the console), and an address out of attempts gets 429 whatever it sends."""
    rt = get_runtime(request)
    try:
        token = parse_bearer(request.headers.get("authorization"))
    except InvalidApiKey as exc:
        raise InvalidApiKey(exc.message, code="invalid_admin_token") from exc
    right = hmac.compare_digest(token.encode(), rt.admin_token.encode())
    decision = await sign_in_attempt(rt, request.client.host if request.client else "?", counts=not right)
    if not decision.allowed:
        raise RateLimited(
            "too many wrong admin tokens from this address; try again later", headers=decision.headers()
        )
    if not right:
        raise InvalidApiKey("wrong admin token", code="invalid_admin_token")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

Since = Annotated[
    float | None, Query(ge=0, le=MAX_TIMESTAMP, description="Unix time, inclusive (0 to 253402300799).")
]
Until = Annotated[
    float | None, Query(ge=0, le=MAX_TIMESTAMP, description="Unix time, exclusive (0 to 253402300799).")
]
KeyId = Annotated[int, Path(ge=1, le=MAX_INT32_ID, description="The key's id (1 to 2^31-1).")]


@router.get("/accounts", summary="List accounts")
async def list_accounts(rt: RuntimeDep, limit: Limit = 100, offset: Offset = 0) -> list[JsonObject]:
    return json_list(await admin.list_accounts(rt, limit=limit, offset=offset))


@router.post(
    "/accounts", status_code=201, openapi_extra=json_body_doc(NewAccount), summary="Create an account"
)
async def create_account(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, NewAccount)
    return json_of(await admin.create_account(rt, body.name, body.balance))


@router.get("/accounts/{name}", summary="An account with balance, keys and task counts")
async def show_account(rt: RuntimeDep, name: str) -> JsonObject:
    return json_of(await admin.show_account(rt, name))


@router.patch(
    "/accounts/{name}", openapi_extra=json_body_doc(AccountChange), summary="Set how many keys it may hold"
)
async def update_account(request: Request, rt: RuntimeDep, name: str) -> JsonObject:
    body = await parse_body(request, AccountChange)
    return json_of(await admin.set_max_keys(rt, name, body.max_keys))


@router.post("/accounts/{name}/topup", openapi_extra=json_body_doc(BalanceChange), summary="Add credits")
async def top_up(request: Request, rt: RuntimeDep, name: str) -> JsonObject:
    body = await parse_body(request, BalanceChange)
    if body.amount <= 0:
        raise InvalidRequest("amount must be positive; use /adjust to remove credits")
    return json_of(await admin.change_balance(rt, name, body.amount, body.note))


@router.post(
    "/accounts/{name}/adjust", openapi_extra=json_body_doc(BalanceChange), summary="Signed balance correction"
)
async def adjust(request: Request, rt: RuntimeDep, name: str) -> JsonObject:
    body = await parse_body(request, BalanceChange)
    return json_of(await admin.change_balance(rt, name, body.amount, body.note))


@router.get("/accounts/{name}/callback_secret", summary="The account's callback signing secret")
async def callback_secret(rt: RuntimeDep, name: str) -> JsonObject:
    return json_of(await admin.callback_secret(rt, name))


@router.post(
    "/accounts/{name}/callback_secret/rotate", summary="Rotate it (the old one signs on for a grace)"
)
async def rotate_callback_secret(rt: RuntimeDep, name: str) -> JsonObject:
    return json_of(await admin.callback_secret(rt, name, rotate=True))


@router.get("/keys", summary="List keys (never the keys themselves)")
async def list_keys(rt: RuntimeDep, account: str | None = None) -> list[JsonObject]:
    return json_list(await admin.list_keys(rt, account))


@router.post(
    "/keys", status_code=201, openapi_extra=json_body_doc(NewKey), summary="Create a key (shown once)"
)
async def create_key(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, NewKey)
    settings = body.model_dump(exclude={"account", "name"}, exclude_none=True)
    return json_of(await admin.create_key(rt, body.account, body.name or "", **settings))


@router.patch(
    "/keys/{key_id}", openapi_extra=json_body_doc(KeyLimits), summary="Disable a key or set its limits"
)
async def update_key(request: Request, rt: RuntimeDep, key_id: KeyId) -> JsonObject:
    body = await parse_body(request, KeyLimits)
    return json_of(await admin.update_key(rt, key_id, body.model_dump(exclude_unset=True)))


@router.post(
    "/codes",
    status_code=201,
    openapi_extra=json_body_doc(NewCodes),
    summary="Make a batch of credit codes (shown once)",
)
async def create_codes(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, NewCodes)
    return json_of(await credit_codes.create_codes(rt, **body.model_dump()))


@router.get("/codes", summary="Credit codes: which were used, by whom and when (never the codes)")
async def list_codes(
    rt: RuntimeDep,
    batch: Annotated[str | None, Query(max_length=32)] = None,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JsonObject]:
    return json_list(
        await credit_codes.list_codes(rt, batch=batch, status=status, limit=limit, offset=offset)
    )


@router.get("/prices", summary="The price list")
async def list_prices(rt: RuntimeDep) -> list[JsonObject]:
    return json_list(await admin.list_prices(rt))


@router.put("/prices", openapi_extra=json_body_doc(PriceRule), summary="Set a price (effective at once)")
async def set_price(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, PriceRule)
    return json_of(await admin.set_price(rt, **body.model_dump()))


@router.delete("/prices", openapi_extra=json_body_doc(PriceKey), summary="Remove a price rule")
async def remove_price(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, PriceKey)
    return json_of(await admin.remove_price(rt, **body.model_dump()))


@router.get("/ledger", summary="Ledger rows, newest first")
async def ledger_entries(
    rt: RuntimeDep,
    account: str | None = None,
    task_id: str | None = None,
    kind: str | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JsonObject]:
    return await admin.ledger_entries(
        rt, account=account, task_id=task_id, kind=kind, since=since, until=until, limit=limit, offset=offset
    )


@router.get("/ledger/verify", summary="Prove every account's ledger sums to its balance")
async def verify_ledger(rt: RuntimeDep) -> JsonObject:
    return json_of(await admin.verify_ledger(rt))


@router.get("/usage", summary="Tasks and credits per account and model")
async def usage(
    rt: RuntimeDep, account: str | None = None, since: Since = None, until: Until = None
) -> list[JsonObject]:
    return json_list(await admin.usage(rt, account=account, since=since, until=until))


@router.get("/deliveries", summary="Callback events and their delivery attempts")
async def deliveries(
    rt: RuntimeDep,
    task_id: str | None = None,
    account: str | None = None,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JsonObject]:
    return await admin.deliveries(
        rt, task_id=task_id, account=account, status=status, limit=limit, offset=offset, with_attempts=True
    )


@router.post("/deliveries/replay", openapi_extra=json_body_doc(Replay), summary="Send events again")
async def replay(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, Replay)
    return json_of(
        await admin.replay(
            rt, event_ids=body.ids, task_id=body.task_id, account=body.account, status=body.status
        )
    )


@router.get("/channels", summary="Upstream channels (secrets masked) with their health")
async def list_channels(rt: RuntimeDep) -> list[JsonObject]:
    return json_list(await channel_admin.list_channels(rt))


@router.post("/channels", status_code=201, openapi_extra=json_body_doc(NewChannel), summary="Add a channel")
async def add_channel(request: Request, rt: RuntimeDep) -> JsonObject:
    body = await parse_body(request, NewChannel)
    return json_of(await channel_admin.add_channel(rt, **body.model_dump()))


@router.patch(
    "/channels/{name}",
    openapi_extra=json_body_doc(ChannelChange),
    summary="Change, enable or disable a channel",
)
async def update_channel(request: Request, rt: RuntimeDep, name: str) -> JsonObject:
    body = await parse_body(request, ChannelChange)
    return json_of(await channel_admin.update_channel(rt, name, body.model_dump(exclude_unset=True)))


@router.post("/channels/{name}/test", summary="One authenticated request to the channel; lifts a bench")
async def test_channel(rt: RuntimeDep, name: str) -> JsonObject:
    return json_of(await channel_admin.test_channel(rt, name))


@router.get("/tasks", summary="Tasks, newest first")
async def list_tasks(
    rt: RuntimeDep,
    state: str | None = None,
    account: str | None = None,
    channel: str | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JsonObject]:
    return await channel_admin.list_tasks(
        rt,
        state=state,
        account=account,
        channel=channel,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


@router.get("/tasks/{task_id}", summary="A task with upstream id, channel, polls, ledger and deliveries")
async def show_task(rt: RuntimeDep, task_id: str) -> JsonObject:
    return await channel_admin.show_task(rt, task_id)


@router.post("/tasks/{task_id}/repoll", summary="Ask upstream about the task now")
async def repoll(rt: RuntimeDep, task_id: str) -> JsonObject:
    return await channel_admin.repoll(rt, task_id)


@router.post("/tasks/{task_id}/refund", summary="End an unfinished task as failed and release its hold")
async def refund(rt: RuntimeDep, task_id: str) -> JsonObject:
    return await channel_admin.refund(rt, task_id)
