"""Copy-ready curl and Python for every client call; the key is always read from $DREAMRELAY_KEY."""

from __future__ import annotations

import json
import pprint
import shlex
from dataclasses import dataclass
from typing import Any

KEY_VARIABLE = "DREAMRELAY_KEY"


@dataclass(frozen=True)
class Snippet:
    id: str  # names the call (the i18n key "call.<id>" says what it does)
    method: str
    path: str
    curl: str
    python: str


def snippet(base: str, id: str, method: str, path: str, body: Any = None) -> Snippet:
    url = f"{base}{path}"
    curl = [f"curl -s{'' if method == 'GET' else ' -X ' + method} {shlex.quote(url)}"]
    curl.append(f'  -H "Authorization: Bearer ${KEY_VARIABLE}"')
    if body is not None:
        curl.append("  -H 'Content-Type: application/json'")
        curl.append(f"  -d {shlex.quote(json.dumps(body, ensure_ascii=False))}")
    python = [
        "import os",
        "",
        "import requests",
        "",
        f"r = requests.{method.lower()}(",
        f"    {url!r},",
        f'    headers={{"Authorization": "Bearer " + os.environ["{KEY_VARIABLE}"]}},',
    ]
    if body is not None:
        literal = pprint.pformat(body, sort_dicts=False, width=90).replace("\n", "\n    ")
        python.append(f"    json={literal},")
    python += ["    timeout=30,", ")", "r.raise_for_status()", "print(r.json())"]
    return Snippet(id=id, method=method, path=path, curl=" \\\n".join(curl), python="\n".join(python))


def submit_body(prompt: str = "a paper boat on a rainy street") -> dict[str, Any]:
    return {"user_prompt": prompt, "aspect_ratio": "16:9", "model_name": "ray-v2", "loop": False}


def every_call(base: str, task_id: str = "<task id>") -> list[Snippet]:
    """The client API and the account API, in the order a customer meets them."""
    return [
        snippet(base, "submit", "POST", "/luma/generations", submit_body()),
        snippet(base, "get", "GET", f"/luma/generations/{task_id}"),
        snippet(base, "batch", "POST", "/luma/tasks", {"ids": [task_id]}),
        snippet(base, "download", "GET", f"/luma/generations/{task_id}/download_video_url"),
        snippet(
            base,
            "extend",
            "POST",
            f"/luma/generations/{task_id}/extend",
            {"user_prompt": "and then it flies"},
        ),
        snippet(base, "account", "GET", "/account"),
        snippet(base, "ledger", "GET", "/account/ledger?limit=100"),
        snippet(base, "secret", "GET", "/account/callback_secret"),
        snippet(base, "rotate", "POST", "/account/callback_secret/rotate"),
        snippet(base, "deliveries", "GET", "/account/deliveries?limit=100"),
    ]


def for_task(base: str, task_id: str) -> list[Snippet]:
    return [
        snippet(base, "get", "GET", f"/luma/generations/{task_id}"),
        snippet(base, "download", "GET", f"/luma/generations/{task_id}/download_video_url"),
        snippet(base, "task_deliveries", "GET", f"/account/deliveries?task_id={task_id}"),
    ]
