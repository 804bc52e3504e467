"""docs/customers.md's table of `size` and `seconds` per model is what /v1/videos takes: every model it
serves is a row, each listed size and length is accepted, and nothing else is (services/videos.py::given,
and seedance_given for the Seedance models, whose sizes are Seedance's own frames)."""

from __future__ import annotations

import re

import pytest

from dreamrelay.domain.catalog import SEEDANCE_MODELS, SEEDANCE_SIZES
from dreamrelay.domain.errors import InvalidRequest
from dreamrelay.formats import videos as fmt
from dreamrelay.services.videos import MODEL_NAMES, Create, given, seedance_given
from dreamrelay.settings import Settings
from tests.support.paths import REPO

DOC = REPO / "docs" / "customers.md"


def table() -> dict[str, tuple[set[str], set[str]]]:
    """model → (its seconds, its sizes), as the page lists them."""
    text = DOC.read_text()
    start = text.index("| `model` | `seconds` | `size` (by resolution) |")
    rows: dict[str, tuple[set[str], set[str]]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        model_cell, seconds_cell, sizes_cell = (cell.strip() for cell in line.strip("|").split("|"))
        model = re.search(r"`([^`]+)`", model_cell)
        assert model is not None, line
        seconds = set(re.findall(r"\d+", seconds_cell))
        if sizes_cell.startswith("as `"):
            sizes = rows[sizes_cell.removeprefix("as `").removesuffix("`")][1]
        else:
            sizes = set(re.findall(r"\b\d+x\d+\b", re.sub(r"\(default [^)]*\)", "", sizes_cell)))
        rows[model[1]] = (seconds, sizes)
    return rows


def test_every_model_served_is_a_row_and_each_row_is_what_the_code_takes() -> None:
    rows = table()
    assert set(rows) == {fmt.shown_model(m) for m in set(MODEL_NAMES.values())} | set(SEEDANCE_MODELS)
    default = fmt.shown_model(Settings().default_model)
    assert f"| `{default}` (default) |" in DOC.read_text()
    for model, (seconds, sizes) in rows.items():
        if model in SEEDANCE_MODELS:
            continue
        for length in seconds:
            assert given(Create(prompt="x", model=model, seconds=length), default).duration == f"{length}s"
        for size in sizes:
            made = given(Create(prompt="x", model=model, size=size), default)
            assert made.aspect_ratio is not None and made.resolution is not None
            assert fmt.size_of(made.aspect_ratio, made.resolution) == size
        for length in {str(n) for n in range(1, 21)} - seconds:
            with pytest.raises(InvalidRequest) as refused:
                given(Create(prompt="x", model=model, seconds=length), default)
            assert refused.value.param == "seconds"
        # Every "WxH" of whole lines we name, at every listed short side, not in the row is refused.
        others = {
            f"{w}x{h}"
            for lines in (360, 540, 720, 1080, 2160)
            for long in range(lines, 6 * lines, 10)
            for w, h in ((long, lines), (lines, long))
        } - sizes
        for size in others:
            with pytest.raises(InvalidRequest) as refused:
                given(Create(prompt="x", model=model, size=size), default)
            assert refused.value.param == "size", size


def test_the_seedance_rows_are_what_seedance_given_takes() -> None:
    rows = table()
    frames = {f"{w}x{h}" for sizes in SEEDANCE_SIZES.values() for w, h in sizes.values()}
    for model in SEEDANCE_MODELS:
        seconds, sizes = rows[model]
        for length in seconds:
            assert seedance_given(Create(prompt="x", seconds=length), model)[0].duration == int(length)
        for size in sizes:
            made, _images = seedance_given(Create(prompt="x", size=size), model)
            assert fmt.seedance_size(made.resolution, made.ratio) == size
        for length in {str(n) for n in range(1, 21)} - seconds:
            with pytest.raises(InvalidRequest) as refused:
                seedance_given(Create(prompt="x", seconds=length), model)
            assert refused.value.param == "seconds"
        # The other models' sizes (1280x720, …) and other resolutions' frames are refused, never rounded.
        others = {
            f"{w}x{h}"
            for lines in (360, 480, 540, 720, 1080)
            for long in range(lines, 3 * lines, 10)
            for w, h in ((long, lines), (lines, long))
        } | frames
        for size in others - sizes:
            with pytest.raises(InvalidRequest) as refused:
                seedance_given(Create(prompt="x", size=size), model)
            assert refused.value.param == "size", size
