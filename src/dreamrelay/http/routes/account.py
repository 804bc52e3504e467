"""The customer's own account, with their API key: balance, ledger, callback secret, deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dreamrelay.http.deps import CallerDep, Limit, Offset, RuntimeDep
from dreamrelay.runtime import Runtime
from dreamrelay.services import admin
from dreamrelay.services.auth import Caller
from dreamrelay.store import accounts as account_store

router = APIRouter(prefix="/account", tags=["account"])


async def _name(rt: Runtime, caller: Caller) -> str:
    async with rt.db.reader() as conn:
        account = await account_store.get_account_by_id(conn, caller.account_id)
    assert account is not None  # a key cannot outlive its account (ON DELETE CASCADE)
    return account.name


@router.get("", summary="The caller's account and balance")
async def show(rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    found = await admin.show_account(rt, await _name(rt, caller))
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
    name = await _name(rt, caller)
    return await admin.ledger_entries(
        rt, account=name, task_id=task_id, kind=kind, limit=limit, offset=offset
    )


@router.get("/callback_secret", summary="The secret callbacks to this account are signed with")
async def callback_secret(rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return await admin.callback_secret(rt, await _name(rt, caller))


@router.post("/callback_secret/rotate", summary="A new signing secret; the old one signs on for a grace")
async def rotate_callback_secret(rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    return await admin.callback_secret(rt, await _name(rt, caller), rotate=True)


@router.get("/deliveries", summary="Callback deliveries of the caller's tasks, with every attempt")
async def deliveries(
    rt: RuntimeDep,
    caller: CallerDep,
    task_id: str | None = None,
    status: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    name = await _name(rt, caller)
    return await admin.deliveries(
        rt, account=name, task_id=task_id, status=status, limit=limit, offset=offset, with_attempts=True
    )
