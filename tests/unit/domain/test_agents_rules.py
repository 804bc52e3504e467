"""The Agents API's rules for a generation request (domain/agents.py): 400s, 422s, price keys, options."""

from __future__ import annotations

import pytest

from dreamrelay.domain import agents as rules
from dreamrelay.domain.errors import InvalidRequest, Unprocessable
from dreamrelay.domain.inputs import AgentsEdit, AgentsInput, AgentsVideo, ImageRef
from dreamrelay.domain.requests import WILDCARD, PriceKey

REF = ImageRef(url="https://example.com/a.jpg")
TOO_MANY_IMAGE_REFS = "image_ref takes at most 9 references for type image"
NO_IMAGE_REFS = "image_ref takes at most 0 references for type video"
HDR_1080_10 = AgentsVideo(duration="10s", resolution="1080p", hdr=True)


def given(**values: object) -> AgentsInput:
    return AgentsInput(prompt="a fox", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "kind", "model"),
    [
        ({}, "image", "uni-1"),
        ({"model": "ray-3.2"}, "video", "ray-3.2"),
        ({"model": "uni-1-max"}, "image", "uni-1-max"),
        ({"type": "video"}, "video", "ray-3.2"),
        ({"type": "video_edit"}, "video_edit", "ray-3.2"),
        ({"type": "video_reframe"}, "video_reframe", "ray-3.2"),
        ({"type": "image_edit"}, "image_edit", "uni-1"),
        ({"type": "image", "model": "uni-1-max"}, "image", "uni-1-max"),
    ],
)
def test_type_and_model_default_from_each_other(values: dict[str, str], kind: str, model: str) -> None:
    assert rules.kind_and_model(given(**values)) == (kind, model)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"type": "layering"}, "type layering is not offered by this relay"),
        ({"type": "video", "model": "uni-1"}, "model uni-1 does not make video generations"),
        ({"type": "image", "model": "ray-3.2"}, "model ray-3.2 does not make image generations"),
        (
            {"type": "video_edit", "model": "uni-1-max"},
            "model uni-1-max does not make video_edit generations",
        ),
    ],
)
def test_a_type_its_model_does_not_make_is_a_400(values: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        rules.kind_and_model(given(**values))
    assert caught.value.message == message


def check(kind: str, **values: object) -> None:
    body = given(type=kind, **values)
    rules.check_combination(body, kind, rules.kind_and_model(body)[1])


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("image", {}),
        ("image", {"image_ref": (REF,) * 9}),
        ("image_edit", {"source": REF, "image_ref": (REF,) * 8}),
        ("video", {}),
        (
            "video",
            {"aspect_ratio": "21:9", "video": AgentsVideo(duration="10s", resolution="1080p", hdr=True)},
        ),
        ("video", {"video": AgentsVideo(loop=True, duration="5s")}),
        ("video", {"video": AgentsVideo(hdr=True, exr_export=True)}),
        ("video", {"video": AgentsVideo(start_frame=REF, end_frame=REF)}),
        ("video", {"video": AgentsVideo(keyframes=(REF, REF), keyframe_indexes=(0, 120))}),
        ("video", {"video": AgentsVideo(duration="10s", keyframes=(REF,), keyframe_indexes=(240,))}),
        ("video_edit", {"source": REF, "video": AgentsVideo(edit=AgentsEdit(strength="flex_1"))}),
        ("video_reframe", {"source": REF, "aspect_ratio": "9:16"}),
        (
            "video_reframe",
            {"source": REF, "aspect_ratio": "1:1", "video": AgentsVideo(source_position={"x": 0})},
        ),
    ],
)
def test_combinations_the_api_accepts(kind: str, values: dict[str, object]) -> None:
    check(kind, **values)


@pytest.mark.parametrize(
    ("kind", "values", "error", "message"),
    [
        ("image_edit", {}, InvalidRequest, "source is required for type image_edit"),
        ("video_edit", {}, InvalidRequest, "source is required for type video_edit"),
        (
            "video_reframe",
            {"aspect_ratio": "1:1"},
            InvalidRequest,
            "source is required for type video_reframe",
        ),
        ("image", {"source": REF}, Unprocessable, "source is not used by type image"),
        ("video", {"source": REF}, Unprocessable, "source is not used by type video"),
        (
            "image",
            {"image_ref": (REF,) * 10},
            InvalidRequest,
            "image_ref takes at most 9 references for type image",
        ),
        (
            "image_edit",
            {"source": REF, "image_ref": (REF,) * 9},
            InvalidRequest,
            "image_ref takes at most 8 references for type image_edit",
        ),
        (
            "video",
            {"image_ref": (REF,)},
            InvalidRequest,
            "image_ref takes at most 0 references for type video",
        ),
        ("image", {"video": AgentsVideo()}, Unprocessable, "video options are not used by type image"),
        (
            "video",
            {"aspect_ratio": "3:1"},
            InvalidRequest,
            "aspect_ratio must be one of 9:16, 3:4, 1:1, 4:3, 16:9, 21:9 for ray-3.2",
        ),
        (
            "video_reframe",
            {"source": REF},
            InvalidRequest,
            "aspect_ratio is required for video_reframe (the new frame's shape)",
        ),
        (
            "video",
            {"video": AgentsVideo(loop=True, duration="10s")},
            Unprocessable,
            "video.loop is only for type video, and not with 10s or hdr",
        ),
        (
            "video",
            {"video": AgentsVideo(loop=True, hdr=True)},
            Unprocessable,
            "video.loop is only for type video, and not with 10s or hdr",
        ),
        (
            "video",
            {"video": AgentsVideo(hdr=True, resolution="360p")},
            Unprocessable,
            "video.hdr is not available for video_reframe or 360p drafts",
        ),
        ("video", {"video": AgentsVideo(exr_export=True)}, Unprocessable, "video.exr_export needs video.hdr"),
        (
            "video_edit",
            {"source": REF, "video": AgentsVideo(start_frame=REF)},
            Unprocessable,
            "start_frame, end_frame and keyframes are only for type video",
        ),
        (
            "video_edit",
            {"source": REF, "video": AgentsVideo(duration="5s")},
            Unprocessable,
            "an edit or reframe lasts as long as its source: leave video.duration out",
        ),
        (
            "video",
            {"video": AgentsVideo(source_position={"x": 0})},
            Unprocessable,
            "video.source_position is only for video_reframe",
        ),
        (
            "video",
            {"video": AgentsVideo(edit=AgentsEdit(strength="flex_1"))},
            Unprocessable,
            "video.edit is only for video_edit",
        ),
        (
            "video",
            {"video": AgentsVideo(keyframes=(REF,))},
            Unprocessable,
            "video.keyframes and video.keyframe_indexes must be parallel lists of 1 to 64",
        ),
        (
            "video",
            {"video": AgentsVideo(keyframes=(REF, REF), keyframe_indexes=(0,))},
            Unprocessable,
            "video.keyframes and video.keyframe_indexes must be parallel lists of 1 to 64",
        ),
        (
            "video",
            {"video": AgentsVideo(keyframes=(REF,), keyframe_indexes=(121,))},
            Unprocessable,
            "video.keyframe_indexes must be 0..120 for 5s",
        ),
        (
            "video",
            {"video": AgentsVideo(duration="10s", keyframes=(REF,), keyframe_indexes=(-1,))},
            Unprocessable,
            "video.keyframe_indexes must be 0..240 for 10s",
        ),
        (
            "video",
            {"video": AgentsVideo(keyframes=(REF, REF), keyframe_indexes=(3, 3))},
            Unprocessable,
            "video.keyframe_indexes must be unique",
        ),
        (
            "video",
            {"video": AgentsVideo(keyframes=(REF,), keyframe_indexes=(3,), start_frame=REF)},
            Unprocessable,
            "video.keyframes exclude start_frame, end_frame and loop",
        ),
    ],
)
def test_combinations_the_api_refuses(
    kind: str, values: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        check(kind, **values)
    assert type(caught.value) is error
    assert caught.value.message == message  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "video", "key"),
    [
        ("image", None, PriceKey()),
        ("image_edit", AgentsVideo(), PriceKey()),
        ("video", None, PriceKey(resolution="720p", duration="5s")),
        (
            "video",
            AgentsVideo(resolution="1080p", duration="10s", hdr=True),
            PriceKey("1080p", "10s", hdr=True),
        ),
        ("video_edit", AgentsVideo(resolution="360p"), PriceKey(resolution="360p", duration="5s")),
    ],
)
def test_the_provisional_price_key(kind: str, video: AgentsVideo | None, key: PriceKey) -> None:
    assert rules.provisional_price_key(given(video=video), kind) == key


def test_an_image_is_priced_whatever_its_size() -> None:
    assert rules.provisional_price_key(given(), "image") == PriceKey(WILDCARD, WILDCARD)


@pytest.mark.parametrize(
    ("seconds", "duration"),
    [(None, "10s"), (0.5, "5s"), (5.0, "5s"), (5.5, "5s"), (5.51, "10s"), (18.0, "10s")],
)
def test_an_edit_is_priced_by_its_source_length(seconds: float | None, duration: str) -> None:
    assert rules.priced_duration(seconds) == duration


@pytest.mark.parametrize(
    ("kind", "extends", "action"),
    [
        ("video", False, "generate"),
        ("video", True, "extend"),
        ("image", False, "image"),
        ("video_edit", True, "video_edit"),
        ("video_reframe", False, "video_reframe"),
    ],
)
def test_the_price_action(kind: str, extends: bool, action: str) -> None:
    assert rules.action(kind, extends=extends) == action


def test_video_options_keep_what_was_given_in_order() -> None:
    video = AgentsVideo(duration="10s", hdr=True, keyframe_indexes=(0, 5), start_frame=REF, edit=AgentsEdit())
    assert rules.video_options(video) == {"duration": "10s", "hdr": True, "keyframe_indexes": [0, 5]}
    assert list(rules.video_options(AgentsVideo(loop=False, resolution="720p"))) == ["resolution", "loop"]
    assert rules.video_options(None) == {}


def test_edit_settings_keep_what_was_given() -> None:
    edit = AgentsEdit(strength="adhere_2", auto_controls=False, keyframe_indexes=(1,), keyframes=(REF,))
    assert rules.edit_settings(edit) == {
        "strength": "adhere_2",
        "auto_controls": False,
        "keyframe_indexes": [1],
    }
    assert rules.edit_settings(AgentsEdit()) == {}
