"""The console's static assets: read once at import, served with a content hash in the URL."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from dreamrelay.http.console.session import COOKIE_PATH

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    version: str


def _load_assets() -> dict[str, Asset]:
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    assets = {}
    for path in sorted((HERE / "static").iterdir()):
        if path.suffix in types:
            body = path.read_bytes()
            assets[path.name] = Asset(
                body=body,
                gzipped=gzip.compress(body, 9, mtime=0),
                media_type=types[path.suffix],
                version=hashlib.sha256(body).hexdigest()[:10],
            )
    return assets


ASSETS = _load_assets()


def static_url(name: str) -> str:
    return f"{COOKIE_PATH}/static/{name}?v={ASSETS[name].version}"
