"""Dooy's web client (chatgpt-web-midjourney-proxy), unchanged, on its Kling video page in Chromium: a
text2video and an image2video with an end frame are made through DreamRelay, show in its list and play.

Opt-in: Dooy's app is another project, which this repository may neither hold nor build, so the test
drives one that is already running, named by DREAMRELAY_DOOY_URL (README.md, "Tests"). The app's Kling
server and key are set in its own settings (localStorage), as a user sets them; every request that
leaves 127.0.0.1 is aborted. What the page sends is replayed on every run by
tests/integration/test_kling_video.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Relay
from tests.integration.test_money import balance_and_ledger
from tests.support.browser import CHROMIUM, launch

DOOY_URL = os.environ.get("DREAMRELAY_DOOY_URL", "")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dooy-kling"

pytestmark = pytest.mark.skipif(
    not DOOY_URL or not CHROMIUM.exists(),
    reason="opt-in: set DREAMRELAY_DOOY_URL to a running Dooy web client (README.md, Tests)",
)

PLAYING = """async () => {
    const video = [...document.querySelectorAll('video')].find(v => v.src);
    video.muted = true;
    await video.play();
    await new Promise(done => setTimeout(done, 1500));
    return {src: video.src, readyState: video.readyState, currentTime: video.currentTime,
            width: video.videoWidth, height: video.videoHeight, paused: video.paused};
}"""


def _jpeg(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (640, 360), colour).save(path, "JPEG")
    return path


def _videos_with_a_source(page: Any, count: int, timeout_ms: int = 120_000) -> None:
    for _ in range(timeout_ms // 500):
        if page.evaluate("() => [...document.querySelectorAll('video')].filter(v => v.src).length") >= count:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"fewer than {count} videos in Dooy's list after {timeout_ms} ms")


def _generate(page: Any, prompt: str, frames: tuple[Path, Path] | None = None) -> None:
    page.get_by_text("16:9", exact=True).click()
    page.get_by_placeholder("Video generate description").fill(prompt)
    if frames is not None:
        inputs = page.locator('input[type="file"]')
        for index, frame in enumerate(frames):  # the first frame, then the end frame
            inputs.nth(index).set_input_files(str(frame))
            page.wait_for_timeout(300)
    page.get_by_role("button", name="Generate video").click()


def test_dooy_makes_and_plays_kling_videos_through_dreamrelay(relay: Relay, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    key = relay.new_key("dooy", balance=1000)
    first, last = _jpeg(tmp_path / "first.jpg", (200, 40, 40)), _jpeg(tmp_path / "last.jpg", (40, 40, 200))
    created: list[dict[str, Any]] = []

    def seen(response: Any) -> None:
        request = response.request
        if request.method == "POST" and request.url.startswith(f"{relay.url}/kling/v1/videos/"):
            created.append({"path": request.url[len(relay.url) :], "body": json.loads(request.post_data)})

    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
                ),
            )
            page.on("response", seen)
            page.goto(DOOY_URL, timeout=180_000)
            settings = {"KLING_SERVER": relay.url, "KLING_KEY": key, "TAB_VIDEO": "kling"}
            page.evaluate("s => localStorage.setItem('gptServerStore', JSON.stringify(s))", settings)
            page.reload()
            page.get_by_text("Videos", exact=True).first.click()  # the sidebar, as a user opens the page
            page.get_by_role("button", name="Generate video").wait_for(timeout=120_000)

            _generate(page, "a paper boat on a rainy street")
            _videos_with_a_source(page, 1)
            text2video = page.evaluate(PLAYING)
            page.screenshot(path=str(SHOTS / "text2video.png"))
            _generate(page, "the red frame turns blue", frames=(first, last))
            _videos_with_a_source(page, 2)
            image2video = page.evaluate(PLAYING)  # the newest comes first in Dooy's list
            page.screenshot(path=str(SHOTS / "image2video.png"))
        finally:
            browser.close()

    assert [c["path"] for c in created] == ["/kling/v1/videos/text2video", "/kling/v1/videos/image2video"]
    assert created[0]["body"]["image"] == "" and created[1]["body"]["image"] != ""
    assert created[1]["body"]["image_tail"] != ""
    for played in (text2video, image2video):
        assert played["src"].startswith(f"{relay.url}/media/")
        assert played["readyState"] >= 3 and played["currentTime"] > 0 and not played["paused"], played
        assert (played["width"], played["height"]) == (1280, 720), played  # 16:9, std
    assert text2video["src"] != image2video["src"]
    balance, rows = balance_and_ledger(relay.settings, "dooy")
    assert [row["kind"] for row in rows] == ["topup", "hold", "capture", "hold", "capture"]
    assert balance == 1000 - 2 * 40  # kling-v1-6, std, 5 s (migration 0016)
