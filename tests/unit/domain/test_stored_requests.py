"""A request a task row keeps reads back into its typed request (`from_stored`): the same stored JSON."""

from __future__ import annotations

import pytest

from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    GENERATE_IMAGE,
    MODIFY_VIDEO,
    REFRAME_IMAGE,
    REFRAME_VIDEO,
    UPSCALE_VIDEO,
)
from dreamrelay.domain.inputs import Reference
from dreamrelay.domain.requests import (
    AgentsRequest,
    DreamMachineRequest,
    ImagesRequest,
    UpstreamRef,
    VideoRequest,
)

VIDEOS = (
    VideoRequest("a boat", "ray-v2", "16:9", "540p", "5s"),
    VideoRequest(
        "a lantern",
        "ray-flash-2",
        "9:16",
        "1080p",
        "9s",
        loop=True,
        expand_prompt=True,
        start_image_url="https://relay/media/inputs/a.png",
        end_image_url="https://relay/media/inputs/b.jpg",
    ),
    VideoRequest("onwards", "ray-v2", "4:3", "720p", "5s", start_generation="t1", end_generation="t2"),
)


@pytest.mark.parametrize("request_", VIDEOS)
def test_a_video_request_reads_back_as_it_was_kept(request_: VideoRequest) -> None:
    again = VideoRequest.from_stored(request_.stored())
    assert again.stored() == request_.stored()
    assert again == request_


def test_a_video_request_missing_fields_reads_with_the_defaults() -> None:
    assert VideoRequest.from_stored({"prompt": "x"}) == VideoRequest("x", "", "16:9", "720p", "5s")


def test_an_images_request_reads_back() -> None:
    kept = ImagesRequest(
        "a fox", "kling-image", "1:1", 3, negative_prompt="blur", image_url="u", image_fidelity=0.4
    )
    assert ImagesRequest.from_stored(kept.stored(), "kling-image") == kept


DREAM_MACHINE = (
    DreamMachineRequest(
        GENERATE_IMAGE,
        prompt="a lighthouse",
        aspect_ratio="1:1",
        format="jpg",
        image_ref=(Reference("u1", 0.5), Reference("u2")),
        style_ref=(Reference("s"),),
        character_images=("c1", "c2"),
        modify_image_ref=Reference("m", 0.9),
    ),
    DreamMachineRequest(
        REFRAME_IMAGE,
        prompt="wider",
        aspect_ratio="16:9",
        format="png",
        media_url="m",
        position={"x_start": 4},
    ),
    DreamMachineRequest(
        REFRAME_VIDEO,
        prompt="taller",
        aspect_ratio="9:16",
        media_url="v",
        duration="5s",
        source_generation="t1",
        first_frame_url="f",
        position={"grid_position_x": 1, "resized_width": 200},
    ),
    DreamMachineRequest(MODIFY_VIDEO, prompt="night", mode="flex_1", media_url="v", duration="10s"),
    DreamMachineRequest(UPSCALE_VIDEO, prompt="p", resolution="1080p", duration="5s", source_generation="t"),
    DreamMachineRequest(
        ADD_AUDIO,
        prompt="waves",
        negative_prompt="noise",
        resolution="720p",
        duration="5s",
        source_generation="t",
    ),
)


@pytest.mark.parametrize("request_", DREAM_MACHINE, ids=lambda r: r.action)
def test_a_dream_machine_request_reads_back_into_the_same_stored_json(request_: DreamMachineRequest) -> None:
    again = DreamMachineRequest.from_stored(request_.stored(), request_.action)
    assert again.stored() == request_.stored()


AGENTS = (
    AgentsRequest("image", "uni-1", "a lantern", aspect_ratio="1:1", output_format="png"),
    AgentsRequest(
        "image_edit",
        "uni-1",
        "bluer",
        source=UpstreamRef(url="https://relay/media/inputs/a.png", media_type="image/png"),
    ),
    AgentsRequest(
        "video",
        "ray-3.2",
        "a boat",
        aspect_ratio="16:9",
        video={"duration": "5s", "resolution": "1080p", "loop": False, "hdr": True},
        start_frame=UpstreamRef(generation_id="up-1"),
        duration="5s",
    ),
    AgentsRequest("video_edit", "ray-3.2", "night", video={"resolution": "720p"}, duration="9s"),
)


@pytest.mark.parametrize("request_", AGENTS, ids=lambda r: r.kind)
def test_an_agents_request_reads_back_into_the_same_stored_json(request_: AgentsRequest) -> None:
    again = AgentsRequest.from_stored(request_.stored(), request_.model)
    assert again.stored() == request_.stored()
    assert (again.kind, again.model, again.price_key, again.hdr) == (
        request_.kind,
        request_.model,
        request_.price_key,
        request_.hdr,
    )


def test_an_agents_request_stored_without_a_type_reads_as_a_video() -> None:
    again = AgentsRequest.from_stored({"prompt": "p", "aspect_ratio": None, "output_format": None}, "ray-3.2")
    assert (again.kind, again.video, again.price_key) == (
        "video",
        None,
        AgentsRequest("video", "m", "p").price_key,
    )
