"""A generation asked for in the own format's words (the own routes, the console's playground), made by
its model's engine: Seedance's (services/ark.py: its own frames and range of seconds) or the Luma video
submit (services/submit.py)."""

from __future__ import annotations

from dreamrelay.domain.api_format import ApiFormat
from dreamrelay.domain.catalog import SEEDANCE_MODELS
from dreamrelay.domain.inputs import GenerationInput
from dreamrelay.domain.task import Task
from dreamrelay.services import ark, submit
from dreamrelay.services.auth import Caller
from dreamrelay.services.idempotency import Idempotency
from dreamrelay.services.intake import Collaborators


async def submit_generation(
    rt: Collaborators,
    caller: Caller,
    given: GenerationInput,
    api_format: ApiFormat = ApiFormat.LUMA,
    idem: Idempotency | None = None,
) -> Task:
    if given.model in SEEDANCE_MODELS:
        return await ark.submit_generation(rt, caller, given, api_format, idem)
    return await submit.submit(rt, caller, given, api_format, idem)
