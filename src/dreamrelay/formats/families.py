"""Every API family customers speak, registered once: where its routes live, how its errors look, what a
task's stored body and callback are in it, what its bodies call the fields errors name, which tasks it
lists.

Adding a family: its routes module (with `router = APIRouter(prefix=FAMILY.prefix)`), its schemas, its
format module, an `ApiFormat` member, and one `Family(...)` line in `_ALL` below; http/app.py includes
the router, http/errors.py and http/openapi.py read the error style, services/lifecycle.py the encoders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dreamrelay.domain.api_format import SHARED_IMAGES, SHARED_VIDEOS, ApiFormat, Listing
from dreamrelay.domain.errors import DreamRelayError
from dreamrelay.domain.states import TaskState
from dreamrelay.domain.task import Task
from dreamrelay.formats import acedata, agents, ark, kling, official, videos
from dreamrelay.formats.own import encode_task

Encoder = Callable[[Task, str], bytes]  # (task, media base URL) → bytes


def envelope_error(message: str, error: DreamRelayError) -> dict[str, object]:
    return {"error": {"message": message, "type": error.type, "code": error.code}}


def openai_error(message: str, error: DreamRelayError) -> dict[str, object]:
    """OpenAI's envelope: the SDK reads `param` and `code` onto its exception."""
    return {"error": {"message": message, "type": error.type, "param": error.param, "code": error.code}}


def detail_error(message: str, error: DreamRelayError) -> dict[str, object]:
    return {"detail": message}


# Ark's error codes and types by status (the SDK maps the status to its exception class).
_ARK_ERRORS = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    402: ("AccountOverdueError", "Forbidden"),
    403: ("AccessDenied", "Forbidden"),
    404: ("ResourceNotFound", "NotFound"),
    409: ("OperationDenied.InvalidState", "Conflict"),
    413: ("InvalidParameter", "BadRequest"),
    429: ("RateLimitExceeded", "TooManyRequests"),
}


def ark_error(message: str, error: DreamRelayError) -> dict[str, object]:
    """Ark's `{"error": {code, message, param, type}}`."""
    code, kind = _ARK_ERRORS.get(error.status, ("InternalServiceError", "InternalServerError"))
    return {"error": {"code": code, "message": message, "param": error.param or "", "type": kind}}


@dataclass(frozen=True)
class ErrorStyle:
    """How a family's errors look: the body, the headers every error carries, their OpenAPI schema."""

    body: Callable[[str, DreamRelayError], dict[str, object]]
    schema: str  # the components/schemas name of the body (http/openapi.py)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    refuses_combinations: bool = False  # answers 422 for combinations of fields (documented as such)


ENVELOPE = ErrorStyle(envelope_error, "ErrorBody")  # also every route outside a family (admin, account…)
DETAIL = ErrorStyle(detail_error, "Detail")
OPENAI = ErrorStyle(openai_error, "OpenAIErrorBody")
ARK = ErrorStyle(ark_error, "ArkErrorBody")


@dataclass(frozen=True)
class Fields:
    """What a family's request bodies call the fields a submit's errors name."""

    callback: str = "callback_url"
    start_image: str = "image"
    end_image: str = "image_end"


def own_body(task: Task, media_base_url: str) -> bytes:
    """The own-format task object: the stored body of every shared video task, whichever family made it
    (so the own batch query stays a byte join)."""
    return encode_task(
        task_id=task.id,
        created_at=task.created_at,
        request=task.request,
        state=task.state,
        failure_reason=task.failure_reason,
        media=task.media,
        media_base_url=media_base_url,
    )


def stored(task: Task, media_base_url: str) -> bytes:
    """The callback of a family whose answers are the stored body itself."""
    return task.body


def video_event(task: Task, media_base_url: str) -> bytes:
    return videos.event(task, media_base_url)


def ark_task(task: Task, media_base_url: str) -> bytes:
    return ark.encode_task(task, media_base_url)


def kling_envelope(task: Task, media_base_url: str) -> bytes:
    return kling.envelope(task.body)


def kling_video_task(task: Task, media_base_url: str) -> bytes:
    """Kling's callback: the bare task object, as Kling posts it."""
    return kling.encode_video(task, media_base_url)


def acedata_result(task: Task, media_base_url: str) -> bytes:
    return acedata.encode_result(task, media_base_url)


# The columns the own-format body is made of (formats/own.py::task_object): a change writing none of
# them leaves the stored body as it is, byte for byte.
OWN_BODY_COLUMNS = frozenset({"id", "created_at", "request", "state", "failure_reason", "media"})


@dataclass(frozen=True)
class Family:
    format: ApiFormat
    prefix: str  # its routes' path prefix; its errors cover the prefix's first segment
    routes: str  # the module whose `router` serves it (included by http/app.py, in registry order)
    errors: ErrorStyle
    encode_body: Encoder  # the task row's `body`, re-encoded by every transition
    callback_payload: Encoder  # what its callbacks post: the object its GET returns
    fields: Fields
    listing: Listing  # which tasks its reads and lists show
    # Columns its stored body is made of; None: every change re-encodes it (bodies that show times).
    body_columns: frozenset[str] | None = None
    # The states its callbacks announce; None: every change of state.
    callback_states: frozenset[TaskState] | None = None
    aliases: tuple[str, ...] = ()  # other prefixes its routes are also served under

    def calls_back(self, state: TaskState) -> bool:
        return self.callback_states is None or state in self.callback_states

    @property
    def error_scopes(self) -> tuple[str, ...]:
        """The paths whose errors take its style: each prefix's first segment ('/dream-machine/')."""
        return tuple("/" + prefix.strip("/").split("/")[0] + "/" for prefix in (self.prefix, *self.aliases))


_LUMA_PREFIX = "/luma"  # the own format and AceData's share it
_ALL = (
    Family(
        ApiFormat.LUMA,
        prefix=_LUMA_PREFIX,
        routes="dreamrelay.http.routes.luma",
        errors=ENVELOPE,
        encode_body=own_body,
        callback_payload=stored,
        fields=Fields(callback="notify_hook", start_image="image_url", end_image="image_end_url"),
        listing=SHARED_VIDEOS,
        body_columns=OWN_BODY_COLUMNS,
    ),
    Family(
        ApiFormat.ACEDATA,
        prefix=_LUMA_PREFIX,
        routes="dreamrelay.http.routes.acedata",
        errors=ENVELOPE,
        encode_body=own_body,
        callback_payload=acedata_result,
        fields=Fields(start_image="start_image_url", end_image="end_image_url"),
        listing=SHARED_VIDEOS,
        body_columns=OWN_BODY_COLUMNS,
    ),
    Family(
        ApiFormat.OFFICIAL,
        prefix="/dream-machine/v1",
        routes="dreamrelay.http.routes.official",
        errors=DETAIL,
        encode_body=own_body,
        callback_payload=official.encode_generation,
        fields=Fields(start_image="keyframes.frame0.url", end_image="keyframes.frame1.url"),
        listing=SHARED_VIDEOS,
        body_columns=OWN_BODY_COLUMNS,
    ),
    Family(
        ApiFormat.KLING,
        prefix="/kling/v1",
        routes="dreamrelay.http.routes.kling",
        errors=ENVELOPE,
        encode_body=kling.encode_data,
        callback_payload=kling_envelope,
        fields=Fields(),
        listing=SHARED_IMAGES,
    ),
    Family(
        ApiFormat.AGENTS,
        prefix="/agents/v1",
        routes="dreamrelay.http.routes.agents",
        # Luma's Agents API: {"detail"}; the status is what its SDK maps to an exception class.
        errors=ErrorStyle(
            detail_error,
            "Detail",
            MappingProxyType({"X-API-Version": agents.API_VERSION}),
            refuses_combinations=True,
        ),
        encode_body=agents.encode_generation,
        callback_payload=stored,
        fields=Fields(),
        listing=Listing(frozenset({ApiFormat.AGENTS})),
    ),
    Family(
        ApiFormat.VIDEOS,
        prefix="/v1/videos",
        routes="dreamrelay.http.routes.videos",
        errors=OPENAI,
        encode_body=own_body,  # a shared video task: the own body, the Video is made when read
        callback_payload=video_event,  # video.completed / video.failed, Standard Webhooks signed
        fields=Fields(callback="callback_url", start_image="input_reference"),
        listing=SHARED_VIDEOS,
        body_columns=OWN_BODY_COLUMNS,
        callback_states=frozenset({TaskState.COMPLETED, TaskState.FAILED}),
    ),
    Family(
        ApiFormat.ARK,
        prefix="/api/v3",
        aliases=("/seedance/v3",),  # where relay clients send it
        routes="dreamrelay.http.routes.ark",
        errors=ARK,
        encode_body=ark_task,  # Ark's task object (it shows updated_at: re-encoded on every change)
        callback_payload=stored,
        fields=Fields(start_image="content.image_url"),
        listing=Listing(frozenset({ApiFormat.ARK})),
    ),
    Family(
        ApiFormat.KLING_VIDEO,
        prefix="/kling/v1/videos",
        routes="dreamrelay.http.routes.kling_video",
        errors=ENVELOPE,
        encode_body=own_body,  # a shared video task: the own body; Kling's object is made when read
        callback_payload=kling_video_task,
        fields=Fields(start_image="image", end_image="image_tail"),
        listing=SHARED_VIDEOS,
        body_columns=OWN_BODY_COLUMNS,
    ),
)
FAMILIES: dict[str, Family] = {family.format: family for family in _ALL}
LUMA, ACEDATA, OFFICIAL, KLING, AGENTS, VIDEOS, ARK_TASKS, KLING_VIDEO = (FAMILIES[f] for f in ApiFormat)


def family_of(task: Task) -> Family:
    """The family `task` was created through."""
    return FAMILIES[task.api_format]


def errors_for(path: str) -> ErrorStyle:
    """The error style of the family whose prefix `path` is under; the envelope outside every family."""
    for family in _ALL:
        if path.startswith(family.error_scopes):
            return family.errors
    return ENVELOPE
