"""The customer's own account, with their API key: balance, ledger, callback secret, deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dreamrelay.http.deps import CallerDep, Limit, Offset, RuntimeDep
from dreamrelay.services import admin

router = APIRouter(prefix="/account", tags=["account"])


@router.get("", summary="The caller's account and balance")
async def show(rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    found = await admin.show_account(rt, caller.account_id)
    return {k: found[k] for k in ("name", "balance", "created_at", "tasks", "in_flight")}


@router.get("/ledger", summary="The caller's ledger, newest first")
async def ledger(
    rt: RuntimeDep,
    caller: CallerDep,
    task_id: str | None = None,
    kind: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    return await admin.ledger_entries(
        rt, account=caller.account_id, task_id=task_id, kind=kind, limit=limit, offset=offset
    )


@router.get("/callback_secret", summary="The secret callbacks to this account are signed with")
async def callback_secret(rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return await admin.callback_secret(rt, caller.account_id)


@router.post("/callback_secret/rotate", summary="A new signing secret; the old one signs on for a grace")
async def rotate_callback_secret(rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return await admin.callback_secret(rt, caller.account_id, rotate=True)


@router.get("/deliveries", summary="Callback deliveries of the caller's tasks, with every attempt")
async def deliveries(
    rt: RuntimeDep,
    caller: CallerDep,
    task_id: str | None = None,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    return await admin.deliveries(
        rt,
        account=caller.account_id,
        task_id=task_id,
        status=status,
        limit=limit,
        offset=offset,
        with_attempts=True,
    )
