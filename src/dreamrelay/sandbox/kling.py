"""The sandbox's Kling image API: POST/GET /v1/images/generations in Kling's envelope, real JPEGs.

Timings and prompt markers are the video sandbox's: queued seconds in `submitted`, dreaming seconds in
`processing`, then `succeed` with `n` images; `[sandbox:reject]` answers 400, `[sandbox:fail]` fails.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from dreamrelay.domain.json_object import JsonObject
from dreamrelay.sandbox.auth import WRONG_KEY
from dreamrelay.sandbox.core import SandboxCore
from dreamrelay.sandbox.render import IMAGE_SIZES, render_image

MAX_IMAGES = 9
MAX_REFERENCE_BYTES = 10 * 1024 * 1024


@dataclass(slots=True)
class KlingImageTask:
    """One image task as the sandbox keeps it (in memory); `shown` turns it into Kling's JSON."""

    task_id: str
    created_at: float
    request: JsonObject  # as validated
    status: str = "submitted"
    message: str = ""
    updated_at: float = 0.0
    images: list[str] = field(default_factory=list)  # file names, once it succeeds


class KlingSandbox:
    """Image tasks in memory (the sandbox forgets unfinished ones on restart); files on disk."""

    def __init__(self, sandbox: SandboxCore) -> None:
        self.sandbox = sandbox
        self.records: dict[str, KlingImageTask] = {}
        self.jobs: set[asyncio.Task[None]] = set()

    def create(self, body: Any) -> KlingImageTask:
        request = _validate(body)
        if "[sandbox:reject]" in request["prompt"]:
            raise KlingError(400, 1201, "request rejected by the [sandbox:reject] marker")
        now = time.time()
        record = KlingImageTask(str(uuid.uuid4()), now, request, updated_at=now)
        self.records[record.task_id] = record
        job = asyncio.create_task(self._run(record))
        self.jobs.add(job)
        job.add_done_callback(self.jobs.discard)
        return record

    def get(self, task_id: str) -> KlingImageTask:
        record = self.records.get(task_id)
        if record is None:
            raise KlingError(404, 1203, "task not found")
        return record

    async def stop(self) -> None:
        for job in self.jobs:
            job.cancel()
        await asyncio.gather(*self.jobs, return_exceptions=True)

    async def _run(self, record: KlingImageTask) -> None:
        config = self.sandbox.config
        request = record.request
        await asyncio.sleep(config.queued_seconds)
        self._change(record, status="processing")
        started = time.monotonic()
        try:
            reference = await self._reference(request.get("image"))
            names = await anyio.to_thread.run_sync(self._render, request, reference)
        except Exception as exc:  # a broken reference image fails the task, as upstream would
            self._change(record, status="failed", message=f"rendering failed: {exc}")
            return
        await asyncio.sleep(max(config.dreaming_seconds - (time.monotonic() - started), 0))
        if "[sandbox:fail]" in request["prompt"]:
            self._change(record, status="failed", message="generation failed ([sandbox:fail] marker)")
            return
        self._change(record, status="succeed", images=names)

    def _render(self, request: JsonObject, reference: bytes | None) -> list[str]:
        names = []
        fidelity = request.get("image_fidelity")
        for index in range(request["n"]):
            data = render_image(
                request["prompt"],
                request["aspect_ratio"],
                index,
                reference=reference,
                fidelity=0.5 if fidelity is None else float(fidelity),
            )
            name = f"kling-{uuid.uuid4().hex}.jpg"
            (self.sandbox.files_dir / name).write_bytes(data)
            names.append(name)
        return names

    async def _reference(self, image: str | None) -> bytes | None:
        if not image:
            return None
        if not image.startswith(("http://", "https://")):
            try:
                return base64.b64decode(image.split(",", 1)[-1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RuntimeError("image is neither a URL nor base64") from exc
        return await self.sandbox.fetch_image(image, MAX_REFERENCE_BYTES, "reference image")

    @staticmethod
    def _change(
        record: KlingImageTask, status: str, message: str | None = None, images: list[str] | None = None
    ) -> None:
        record.status, record.updated_at = status, time.time()
        if message is not None:
            record.message = message
        if images is not None:
            record.images = images


class KlingError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _validate(body: Any) -> JsonObject:
    if not isinstance(body, dict):
        raise KlingError(400, 1201, "request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise KlingError(400, 1201, "prompt is required")
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise KlingError(400, 1201, f"n must be 1..{MAX_IMAGES}")
    aspect_ratio = body.get("aspect_ratio", "16:9")
    if aspect_ratio not in IMAGE_SIZES:
        raise KlingError(400, 1201, f"aspect_ratio must be one of {', '.join(IMAGE_SIZES)}")
    fidelity = body.get("image_fidelity")
    if fidelity is not None and not (isinstance(fidelity, int | float) and 0 <= fidelity <= 1):
        raise KlingError(400, 1201, "image_fidelity must be 0..1")
    image = body.get("image")
    if image is not None and not isinstance(image, str):
        raise KlingError(400, 1201, "image must be a URL or base64")
    return {
        "model_name": body.get("model_name") or body.get("model") or "kling-v1",
        "prompt": prompt,
        "negative_prompt": body.get("negative_prompt"),
        "image": image,
        "image_fidelity": fidelity,
        "n": n,
        "aspect_ratio": aspect_ratio,
    }


def kling_router(kling: KlingSandbox, api_key: str, file_url: Callable[[Request, str], str]) -> APIRouter:
    router = APIRouter()

    def authorise(request: Request) -> None:
        if request.headers.get("authorization", "") != f"Bearer {api_key}":
            raise KlingError(401, 1000, WRONG_KEY)

    def envelope(
        data: JsonObject | None, status: int = 200, code: int = 0, message: str = "SUCCEED"
    ) -> JSONResponse:
        body = {"code": code, "message": message, "request_id": str(uuid.uuid4()), "data": data}
        return JSONResponse(body, status_code=status)

    def shown(record: KlingImageTask, request: Request) -> JsonObject:
        return {
            "task_id": record.task_id,
            "task_status": record.status,
            "task_status_msg": record.message,
            "created_at": int(record.created_at * 1000),
            "updated_at": int(record.updated_at * 1000),
            "task_result": {
                "images": [{"index": i, "url": file_url(request, n)} for i, n in enumerate(record.images)]
            },
        }

    @router.post("/v1/images/generations")
    async def create(request: Request) -> JSONResponse:
        try:
            authorise(request)
            try:
                body = await request.json()
            except ValueError as exc:
                raise KlingError(400, 1200, "request body is not valid JSON") from exc
            return envelope(shown(kling.create(body), request))
        except KlingError as exc:
            return envelope(None, exc.status, exc.code, exc.message)

    @router.get("/v1/images/generations/{task_id}")
    async def get(task_id: str, request: Request) -> JSONResponse:
        try:
            authorise(request)
            return envelope(shown(kling.get(task_id), request))
        except KlingError as exc:
            return envelope(None, exc.status, exc.code, exc.message)

    return router
