"""What a task row keeps of each kind of request (key order included: rows stay byte-identical) and the
bodies the adapters build from the same typed request."""

from __future__ import annotations

from typing import Any

import orjson

from dreamrelay.domain.catalog import ADD_AUDIO, GENERATE_IMAGE, MODIFY_VIDEO, REFRAME_IMAGE, REFRAME_VIDEO
from dreamrelay.domain.inputs import Reference
from dreamrelay.domain.requests import (
    WILDCARD,
    AgentsRequest,
    DreamMachineRequest,
    ImagesRequest,
    PriceKey,
    UpstreamRef,
    VideoRequest,
)
from dreamrelay.upstreams.agents import generation_body
from dreamrelay.upstreams.luma import dream_machine_call, official_request

IN = "https://relay/media/inputs"


def kept(stored: dict[str, Any]) -> str:
    return orjson.dumps(stored).decode()


def test_a_video_request_keeps_the_own_format_fields_in_order() -> None:
    video = VideoRequest(
        prompt="a",
        model="ray-v2",
        aspect_ratio="16:9",
        resolution="720p",
        duration="5s",
        loop=True,
        end_image_url=f"{IN}/1.png",
        start_generation="t-1",
        extend_upstream_id="up-1",
    )
    assert kept(video.stored()) == (
        '{"prompt":"a","aspect_ratio":"16:9","model":"ray-v2","resolution":"720p","duration":"5s",'
        '"loop":true,"expand_prompt":false,"image_url":null,"image_end_url":"https://relay/media/inputs/1.png",'
        '"start_generation":"t-1","end_generation":null}'
    )
    assert video.price_key == PriceKey(resolution="720p", duration="5s")
    # Upstream continues its own generation, never ours.
    assert official_request(video)["keyframes"] == {
        "frame0": {"type": "generation", "id": "up-1"},
        "frame1": {"type": "image", "url": f"{IN}/1.png"},
    }


def test_an_images_request_is_priced_per_picture() -> None:
    images = ImagesRequest(prompt="f", model="kling-image", aspect_ratio="16:9", n=2, image_fidelity=0.4)
    assert kept(images.stored()) == (
        '{"prompt":"f","negative_prompt":null,"image_url":null,"image_fidelity":0.4,"n":2,"aspect_ratio":"16:9"}'
    )
    assert images.price_key == PriceKey(resolution=WILDCARD, duration=WILDCARD, n=2)


def test_dream_machine_requests_keep_and_send_what_each_action_takes() -> None:
    photon = DreamMachineRequest(
        action=GENERATE_IMAGE,
        model="photon-1",
        prompt="h",
        format="jpg",
        image_ref=(Reference(f"{IN}/a.png", 0.5),),
        character_images=(f"{IN}/c.png",),
    )
    assert kept(photon.stored()) == (
        '{"prompt":"h","aspect_ratio":"16:9","format":"jpg",'
        '"image_ref":[{"url":"https://relay/media/inputs/a.png","weight":0.5}],'
        '"character_ref":{"identity0":{"images":["https://relay/media/inputs/c.png"]}}}'
    )
    path, body = dream_machine_call(photon)
    assert (path, list(body)) == (
        "/generations/image",
        ["generation_type", "model", "prompt", "aspect_ratio", "format", "image_ref", "character_ref"],
    )

    reframe = DreamMachineRequest(
        action=REFRAME_VIDEO,
        model="ray-flash-2",
        prompt="i",
        aspect_ratio="9:16",
        media_url="https://relay/media/tasks/t/video.mp4",
        first_frame_url=f"{IN}/f.png",
        position={"grid_position_x": 0},
        duration="5s",
        source_generation="t",
    )
    assert list(reframe.stored()) == [
        "prompt",
        "aspect_ratio",
        "media",
        "duration",
        "source_generation",
        "first_frame",
        "grid_position_x",
    ]
    assert reframe.price_key == PriceKey(resolution=WILDCARD, duration="5s")
    # What only DreamRelay keeps (the price bucket, our source task) is not sent.
    assert list(dream_machine_call(reframe)[1]) == [
        "generation_type",
        "model",
        "prompt",
        "aspect_ratio",
        "media",
        "first_frame",
        "grid_position_x",
    ]

    image_reframe = DreamMachineRequest(
        action=REFRAME_IMAGE, model="photon-flash-1", media_url=f"{IN}/m.png", format="png"
    )
    assert kept(image_reframe.stored()) == (
        '{"prompt":"","aspect_ratio":"16:9","media":{"url":"https://relay/media/inputs/m.png"},"format":"png"}'
    )

    modify = DreamMachineRequest(
        action=MODIFY_VIDEO,
        model="ray-2",
        mode="adhere_1",
        media_url="u",
        duration="5s",
        source_generation="t",
    )
    assert list(modify.stored()) == [
        "prompt",
        "aspect_ratio",
        "mode",
        "media",
        "duration",
        "source_generation",
    ]

    audio = DreamMachineRequest(
        action=ADD_AUDIO,
        prompt="k",
        negative_prompt="l",
        resolution="540p",
        duration="5s",
        source_generation="t",
        parent_upstream_id="up-9",
        callback_url="https://relay/upstream/callbacks/x",
    )
    assert kept(audio.stored()) == (
        '{"prompt":"k","aspect_ratio":"16:9","resolution":"540p","duration":"5s","source_generation":"t",'
        '"negative_prompt":"l"}'
    )
    assert dream_machine_call(audio) == (
        "/generations/up-9/audio",
        {
            "generation_type": ADD_AUDIO,
            "prompt": "k",
            "negative_prompt": "l",
            "callback_url": "https://relay/upstream/callbacks/x",
        },
    )


def test_an_agents_request_keeps_its_price_fields_and_sends_every_reference_resolved() -> None:
    frame = UpstreamRef(url=f"{IN}/s.png", media_type="image/png")
    request = AgentsRequest(
        kind="video",
        model="ray-3.2",
        prompt="n",
        video={"resolution": "360p", "loop": True},
        start_frame=frame,
        keyframes=(UpstreamRef(generation_id="up-2"),),
        duration="5s",
        user_id="dr-x",
    )
    assert kept(request.stored()) == (
        '{"type":"video","prompt":"n","aspect_ratio":null,"resolution":"360p","duration":"5s","hdr":false,'
        '"output_format":null}'
    )
    assert request.price_key == PriceKey(resolution="360p", duration="5s")
    assert generation_body(request) == {
        "type": "video",
        "model": "ray-3.2",
        "prompt": "n",
        "video": {
            "resolution": "360p",
            "loop": True,
            "start_frame": {"url": f"{IN}/s.png", "media_type": "image/png"},
            "keyframes": [{"generation_id": "up-2"}],
            "duration": "5s",
        },
    }
    image = AgentsRequest(kind="image", model="uni-1", prompt="m", output_format="jpeg")
    assert kept(image.stored()) == '{"type":"image","prompt":"m","aspect_ratio":null,"output_format":"jpeg"}'
    assert image.price_key == PriceKey()
