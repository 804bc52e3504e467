"""The catalog: each model's family, capability and kinds, and what a task needs (domain/catalog.py)."""

from __future__ import annotations

import pytest

from dreamrelay.domain.catalog import (
    ADD_AUDIO,
    AGENTS,
    CATALOG,
    DM_ACTIONS,
    DREAM_MACHINE,
    GENERATE_IMAGE,
    IMAGE,
    KEY_MODELS,
    KLING_VIDEO_MODELS,
    MAKES_IMAGES,
    MAKES_VIDEO,
    SEEDANCE,
    SEEDANCE_MODELS,
    VIDEO,
    capability_of,
    models_of,
    normalise_duration,
    price_resolution,
    source_duration,
    uses_agents_api,
)


def test_every_model_a_key_may_name_is_in_the_catalog_and_the_sandbox_serves_each() -> None:
    assert set(KEY_MODELS) == set(CATALOG)
    assert all("sandbox" in spec.kinds for spec in CATALOG.values())
    assert all(spec.family in (MAKES_VIDEO, MAKES_IMAGES) for spec in CATALOG.values())


@pytest.mark.parametrize(
    ("model", "family", "capability"),
    [
        ("ray-v2", MAKES_VIDEO, VIDEO),
        ("ray-flash-2", MAKES_VIDEO, VIDEO),
        ("ray-3.2", MAKES_VIDEO, AGENTS),
        ("uni-1", MAKES_IMAGES, AGENTS),
        ("kling-image", MAKES_IMAGES, IMAGE),
        ("photon-1", MAKES_IMAGES, DREAM_MACHINE),
    ],
)
def test_a_model_names_its_family_and_capability(model: str, family: str, capability: str) -> None:
    assert (CATALOG[model].family, CATALOG[model].capability) == (family, capability)


def test_seedance_models_are_videos_served_by_the_seedance_kind() -> None:
    seedance = [spec for spec in CATALOG.values() if spec.capability == SEEDANCE]
    assert seedance and all(s.family == MAKES_VIDEO and "seedance" in s.kinds for s in seedance)


def test_a_kind_serves_the_models_that_name_it() -> None:
    assert set(models_of("kling")) == {"kling-image", *KLING_VIDEO_MODELS}
    assert set(models_of("seedance")) == set(SEEDANCE_MODELS)
    assert set(models_of("luma-agents")) == {"ray-3.2", "uni-1", "uni-1-max"}
    assert "ray-v2" in models_of("relay") and "ray-3.2" not in models_of("relay")
    assert set(models_of("sandbox")) == set(CATALOG)
    assert models_of("no-such-kind") == ()


@pytest.mark.parametrize("action", DM_ACTIONS)
def test_the_dream_machine_actions_need_the_dream_machine_capability(action: str) -> None:
    assert capability_of(action, "ray-v2") == DREAM_MACHINE


def test_a_plain_task_needs_its_models_capability_and_an_unknown_model_a_video() -> None:
    assert capability_of("generate", "ray-v2") == VIDEO
    assert capability_of("generate", "ray-3.2") == AGENTS
    assert capability_of("image", "kling-image") == IMAGE
    assert capability_of("generate", "no-such-model") == VIDEO
    assert capability_of(GENERATE_IMAGE, "photon-1") == capability_of(ADD_AUDIO, "ray-v2") == DREAM_MACHINE


def test_only_the_agents_models_go_through_the_agents_api() -> None:
    assert [m for m in CATALOG if uses_agents_api(m)] == ["ray-3.2", "uni-1", "uni-1-max"]
    assert not uses_agents_api("no-such-model")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("5s", "5s"), ("5", "5s"), (" 9S ", "9s"), ("10", "10s"), ("7s", None), ("", None)],
)
def test_a_duration_reads_with_or_without_its_unit(given: str, expected: str | None) -> None:
    assert normalise_duration(given) == expected


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(0.5, "5s"), (5.5, "5s"), (5.6, "10s"), (10.5, "10s"), (30.5, "30s"), (30.6, None)],
)
def test_a_source_video_is_priced_by_the_first_bucket_it_fits(seconds: float, bucket: str | None) -> None:
    assert source_duration(seconds) == bucket


def test_hdr_has_its_own_price_resolution() -> None:
    assert price_resolution("1080p", False) == "1080p"
    assert price_resolution("1080p", True) != "1080p"
