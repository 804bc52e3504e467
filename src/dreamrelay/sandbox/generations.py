"""The official Dream Machine API of the sandbox: generations kept as JSON files, one driver task per
unfinished generation moving it queued → dreaming → completed/failed, callbacks on every change."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack

import anyio
import orjson
from fastapi import Request

from dreamrelay.domain.ids import is_ascii_token
from dreamrelay.domain.json_object import JsonObject
from dreamrelay.media import probe
from dreamrelay.private_files import private_dir, private_file, write_private
from dreamrelay.sandbox import dream_machine
from dreamrelay.sandbox.core import GenerationRecord, RecordChange, SandboxConfig, SandboxCore, SandboxError
from dreamrelay.sandbox.render import RenderSpec, dimensions, frame_count, render_video

log = logging.getLogger(__name__)

MODELS = ("ray-1-6", "ray-2", "ray-flash-2")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
NO_CALLBACK = "[sandbox:no-callback]"  # accepted, but never called back: only polls move it


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Sandbox(SandboxCore):
    """Generations kept as JSON files; one driver task per unfinished generation moves it along."""

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self.records_dir = config.data_dir / "generations"
        self.drivers: dict[str, asyncio.Task[None]] = {}
        self.callbacks: set[asyncio.Task[None]] = set()
        self._bearer = f"Bearer {config.api_key}".encode()
        self._files_key = hmac.new(config.api_key.encode(), b"sandbox output files", hashlib.sha256).digest()

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        # Records hold prompts and callback URLs with their tokens: owner-only, as the data directory.
        private_dir(self.records_dir)
        for path in sorted(self.records_dir.glob("*.json")):
            private_file(path, create=False)  # written before records were made owner-only
            try:
                record = GenerationRecord(**orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError, TypeError):
                log.warning("sandbox: unreadable record %s skipped", path)
                continue
            self.records[record.id] = record
            if record.state in ("queued", "dreaming") and not record.stalled:
                self._drive(record)

    async def stop(self) -> None:
        for task in self.drivers.values():
            task.cancel()
        await asyncio.gather(*self.drivers.values(), return_exceptions=True)
        self.drivers.clear()
        await super().stop()

    # ---- API -------------------------------------------------------------------------------
    async def create(
        self, body: Any, base_url: str, kind: str = "video", parent: str | None = None, api: str | None = None
    ) -> GenerationRecord:
        """A new generation; `api` marks one made through another of the sandbox's APIs (its /v1/videos)."""
        request = self._validate(body) if kind == "video" else self._validate_more(body, kind, parent)
        prompt = request.get("prompt") or ""
        if "[sandbox:reject]" in prompt:
            raise SandboxError(400, "request rejected by the [sandbox:reject] marker")
        if "[sandbox:error]" in prompt:
            raise SandboxError(500, "internal error simulated by the [sandbox:error] marker")
        self._check_parents(request)
        record = GenerationRecord(
            id=str(uuid.uuid4()),
            state="queued",
            failure_reason=None,
            created_at=time.time(),
            model=request.get("model") or self.records[request["parent"]].model,
            request=request,
            video=None,
            image=None,
            base_url=base_url,
            stalled=False,
            api=api,
        )
        self._save(record)
        self._drive(record)
        return record

    def get(self, generation_id: str) -> GenerationRecord:
        record = self.records.get(generation_id)
        if record is None:
            raise SandboxError(404, "Generation not found")
        return record

    async def delete(self, generation_id: str) -> None:
        self.get(generation_id)
        task = self.drivers.pop(generation_id, None)
        if task is not None:
            task.cancel()
        self.records.pop(generation_id, None)
        (self.records_dir / f"{generation_id}.json").unlink(missing_ok=True)

    def generation(self, record: GenerationRecord, base_url: str | None = None) -> JsonObject:
        base = (base_url or record.base_url).rstrip("/")
        video = self.file_url(base, record.video) if record.video else None
        image = self.file_url(base, record.image) if record.image else None
        kind = record.request.get("generation_type", "video")
        request = {k: v for k, v in record.request.items() if k != "parent"}
        return {
            "id": record.id,
            "generation_type": "image" if kind in dream_machine.IMAGE_TYPES else "video",
            "state": record.state,
            "failure_reason": record.failure_reason,
            "created_at": _iso(record.created_at),
            "assets": {"video": video, "image": image, "progress_video": None},
            "model": record.model,
            # The callback URL carries the caller's secret token: never shown, not even to the key's holder.
            "request": {k: v for k, v in request.items() if k != "callback_url"},
        }

    # ---- validation --------------------------------------------------------------------------
    # ---- output files: the key, or a link we signed ---------------------------------------------
    def file_url(self, base: str, name: str) -> str:
        """The link to an output file: signed with a secret derived from the API key, so a file name
        (a hash of its render spec, which a prompt predicts) alone opens nothing."""
        return f"{base}/files/{name}?signature={self._file_signature(name)}"

    def may_read_file(self, request: Request, name: str) -> bool:
        if hmac.compare_digest(request.headers.get("authorization", "").encode(), self._bearer):
            return True
        given = request.query_params.get("signature", "")
        return is_ascii_token(given) and hmac.compare_digest(given, self._file_signature(name))

    def _file_signature(self, name: str) -> str:
        return hmac.new(self._files_key, name.encode(), hashlib.sha256).hexdigest()

    def _validate_more(self, body: Any, kind: str, parent_id: str | None) -> JsonObject:
        """Images, upscale, audio, reframes and modify (sandbox/dream_machine.py)."""
        if not isinstance(body, dict):
            raise SandboxError(400, "request body must be a JSON object")
        try:
            if kind in ("upscale_video", "add_audio"):
                parent = self.get(parent_id or "")
                if kind == "upscale_video":
                    return dream_machine.validate_upscale(body, parent)
                return dream_machine.validate_audio(body, parent)
            if kind == "image":
                return dream_machine.validate_image(body)
            if kind == "modify_video":
                return dream_machine.validate_modify(body)
            return dream_machine.validate_reframe(body, kind)
        except dream_machine.Invalid as exc:
            raise SandboxError(400, str(exc)) from exc

    def _validate(self, body: Any) -> JsonObject:
        if not isinstance(body, dict):
            raise SandboxError(400, "request body must be a JSON object")
        if body.get("generation_type", "video") != "video":
            raise SandboxError(400, "only generation_type 'video' is supported by the sandbox")
        model = body.get("model", "ray-2")
        if model not in MODELS:
            raise SandboxError(400, f"model must be one of {', '.join(MODELS)}")
        request: JsonObject = {"generation_type": "video", "model": model}
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise SandboxError(400, "prompt must be a string")
        aspect_ratio = body.get("aspect_ratio", "16:9")
        if aspect_ratio not in ASPECT_RATIOS:
            raise SandboxError(400, f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")
        loop = body.get("loop", False)
        if not isinstance(loop, bool):
            raise SandboxError(400, "loop must be a boolean")
        resolution, duration = body.get("resolution", "720p"), body.get("duration", "5s")
        if model == "ray-1-6":
            resolution, duration = "720p", "5s"
        if resolution not in RESOLUTIONS:
            raise SandboxError(400, f"resolution must be one of {', '.join(RESOLUTIONS)}")
        if duration not in DURATIONS:
            raise SandboxError(400, f"duration must be one of {', '.join(DURATIONS)}")
        keyframes = body.get("keyframes") or {}
        if not isinstance(keyframes, dict) or set(keyframes) - {"frame0", "frame1"}:
            raise SandboxError(400, "keyframes may hold frame0 and frame1 only")
        for name, frame in keyframes.items():
            valid = isinstance(frame, dict) and (
                (frame.get("type") == "image" and isinstance(frame.get("url"), str))
                or (frame.get("type") == "generation" and isinstance(frame.get("id"), str))
            )
            if not valid:
                raise SandboxError(400, f"keyframes.{name} must be an image (url) or a generation (id)")
        if not prompt and not keyframes:
            raise SandboxError(400, "prompt is required")
        callback_url = body.get("callback_url")
        if callback_url is not None and not (
            isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
        ):
            raise SandboxError(400, "callback_url must be an http(s) URL")
        request.update(
            prompt=prompt or "",
            aspect_ratio=aspect_ratio,
            loop=loop,
            resolution=resolution,
            duration=duration,
        )
        if keyframes:
            request["keyframes"] = keyframes
        if callback_url:
            request["callback_url"] = callback_url
        return request

    def _check_parents(self, request: JsonObject) -> None:
        for frame in (request.get("keyframes") or {}).values():
            if frame["type"] == "generation":
                parent = self.records.get(frame["id"])
                if parent is None:
                    raise SandboxError(400, f"generation {frame['id']} not found")
                if parent.state != "completed":
                    raise SandboxError(400, f"generation {frame['id']} is not completed")

    # ---- driving one generation --------------------------------------------------------------
    def _drive(self, record: GenerationRecord) -> None:
        self.drivers[record.id] = asyncio.create_task(
            self._run(record), name=f"sandbox-generation-{record.id}"
        )

    async def _run(self, record: GenerationRecord) -> None:
        rendering: asyncio.Task[tuple[str | None, str | None]] | None = None
        try:
            config = self.config
            prompt = record.request.get("prompt") or ""
            await self._sleep_until(record.created_at + config.queued_seconds)
            if record.state == "queued":
                await self._change(record, state="dreaming")
            if "[sandbox:stall]" in prompt:
                await self._change(record, stalled=True)
                return
            rendering = asyncio.create_task(self._render(record))
            await self._sleep_until(record.created_at + config.queued_seconds + config.dreaming_seconds)
            if "[sandbox:fail]" in prompt:
                rendering.cancel()
                await self._change(
                    record, state="failed", failure_reason="generation failed ([sandbox:fail] marker)"
                )
                return
            try:
                video, image = await rendering
            except Exception as exc:  # a broken keyframe image or parent video fails the generation
                log.warning("sandbox: generation %s failed to render: %s", record.id, exc)
                await self._change(record, state="failed", failure_reason=f"rendering failed: {exc}")
                return
            await self._change(record, state="completed", video=video, image=image)
        except asyncio.CancelledError:
            # Deleted or stopping: the render must not outlive its generation (see _render).
            if rendering is not None:
                rendering.cancel()
            raise
        finally:
            self.drivers.pop(record.id, None)

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _render(self, record: GenerationRecord) -> tuple[str | None, str | None]:
        request = record.request
        if request.get("generation_type", "video") != "video":
            cancel = threading.Event()
            try:
                return await dream_machine.render_generation(self, request, cancel)
            except asyncio.CancelledError:
                cancel.set()
                raise
        keyframes = request.get("keyframes") or {}
        start = await self._keyframe_image(keyframes.get("frame0"), last=True)
        end = await self._keyframe_image(keyframes.get("frame1"), last=False)
        width, height = dimensions(request["resolution"], request["aspect_ratio"])
        spec = RenderSpec(
            prompt=request["prompt"],
            width=width,
            height=height,
            frames=frame_count(request["duration"]),
            loop=request["loop"],
            start_image=start,
            end_image=end,
        )
        key = spec.cache_key
        video_path = self.files_dir / f"{key}.mp4"
        image_path = self.files_dir / f"{key}.jpg"
        lock = self.render_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not (video_path.exists() and image_path.exists()):
                # Cancelling this task abandons the worker thread (asyncio cancellation does not wait
                # for it), so the thread is told to stop too; otherwise it keeps rendering after a
                # delete or a stop and, after a restart, races the new render of the same files.
                cancel = threading.Event()
                try:
                    await anyio.to_thread.run_sync(
                        self._render_files, spec, video_path, image_path, cancel, limiter=self.limiter
                    )
                except asyncio.CancelledError:
                    cancel.set()
                    raise
        return video_path.name, image_path.name

    @staticmethod
    def _render_files(spec: RenderSpec, video_path: Path, image_path: Path, cancel: threading.Event) -> None:
        render_video(spec, video_path, cancel)
        first, _last = probe.first_and_last_frames(video_path)
        partial = image_path.with_name(f"{image_path.stem}.{uuid.uuid4().hex}.partial.jpg")
        partial.write_bytes(probe.jpeg_bytes(first))
        partial.replace(image_path)

    async def _keyframe_image(self, frame: JsonObject | None, *, last: bool) -> bytes | None:
        """An image keyframe is fetched; a generation keyframe gives its parent's last (or first) frame."""
        if frame is None:
            return None
        if frame["type"] == "generation":
            parent = self.records.get(frame["id"])
            if parent is None or not parent.video:
                raise RuntimeError(f"generation {frame['id']} has no video")
            path = self.files_dir / parent.video
            first_frame, last_frame = await anyio.to_thread.run_sync(probe.first_and_last_frames, path)
            return probe.jpeg_bytes(last_frame if last else first_frame)
        url = frame["url"]
        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        return await self.fetch_image(url, MAX_IMAGE_BYTES, "keyframe image")

    async def _change(self, record: GenerationRecord, **values: Unpack[RecordChange]) -> None:
        state_before = record.state
        for name, value in values.items():
            setattr(record, name, value)
        self._save(record)
        request = record.request
        calls_back = request.get("callback_url") and NO_CALLBACK not in (request.get("prompt") or "")
        if record.state != state_before and calls_back:
            sending = asyncio.create_task(self.callback(request["callback_url"], self.generation(record)))
            self.callbacks.add(sending)
            sending.add_done_callback(self.callbacks.discard)

    def _save(self, record: GenerationRecord) -> None:
        self.records[record.id] = record
        path = self.records_dir / f"{record.id}.json"
        write_private(path, orjson.dumps(record))
