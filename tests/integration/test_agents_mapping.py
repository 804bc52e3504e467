"""Pure mappings of the Agents API: own-format requests to Agents bodies, Generations to our status."""

from __future__ import annotations

from dreamrelay.domain.catalog import price_resolution, uses_agents_api
from dreamrelay.domain.requests import VideoRequest
from dreamrelay.domain.states import TaskState
from dreamrelay.sandbox.render import ray32_dimensions, ray32_frames
from dreamrelay.upstreams.agents import agents_body, parse_generation


def test_an_own_format_extend_becomes_a_start_frame_by_upstream_generation_id() -> None:
    request = VideoRequest(
        prompt="more",
        model="ray-3.2",
        aspect_ratio="16:9",
        resolution="1080p",
        duration="10s",
        extend_upstream_id="up-1",
        end_image_url="https://relay/media/inputs/x.png",
    )
    assert agents_body(request) == {
        "type": "video",
        "model": "ray-3.2",
        "prompt": "more",
        "aspect_ratio": "16:9",
        "video": {
            "duration": "10s",
            "resolution": "1080p",
            "start_frame": {"generation_id": "up-1"},
            "end_frame": {"url": "https://relay/media/inputs/x.png"},
        },
    }


def test_generations_map_to_states_outputs_and_failure_codes() -> None:
    done = parse_generation(
        {
            "state": "completed",
            "output": [{"type": "video", "url": "https://cdn/v.mp4?sig"}],
            "failure_code": None,
        }
    )
    assert (done.state, done.video_url, done.image_urls, done.failure_code) == (
        TaskState.COMPLETED,
        "https://cdn/v.mp4?sig",
        (),
        None,
    )
    images = parse_generation(
        {"state": "completed", "output": [{"type": "image", "url": "a"}, {"type": "image", "url": "b"}]}
    )
    assert images.image_urls == ("a", "b") and images.video_url is None
    moderated = parse_generation(
        {"state": "failed", "failure_code": "content_moderated", "failure_reason": "no"}
    )
    assert (moderated.state, moderated.failure_code, moderated.failure_reason) == (
        TaskState.FAILED,
        "content_moderated",
        "no",
    )
    unknown = parse_generation({"state": "failed", "failure_code": "something_new"})
    assert unknown.failure_code == "generation_failed"
    assert parse_generation({"state": "processing"}).state is TaskState.PROCESSING
    assert parse_generation({"state": "queued"}).state is TaskState.PENDING


def test_ray32_sizes_frames_and_hdr_price_keys() -> None:
    assert ray32_dimensions("360p", "16:9") == (640, 360)
    assert ray32_dimensions("1080p", "9:16") == (1080, 1920)
    assert ray32_dimensions("720p", "21:9") == (1680, 720)
    assert (ray32_frames("5s"), ray32_frames("10s")) == (121, 241)
    assert (price_resolution("1080p", True), price_resolution("360p", False)) == ("1080p+hdr", "360p")
    assert uses_agents_api("ray-3.2") and uses_agents_api("uni-1-max") and not uses_agents_api("ray-v2")
