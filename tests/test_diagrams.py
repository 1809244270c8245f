"""The diagrams in figures/: drawn by tools/diagrams.py, committed as drawn, valid."""

import re
import xml.etree.ElementTree as ET

import diagrams
import pytest

SVG = "{http://www.w3.org/2000/svg}"
FIGURES = diagrams.FIGURES
HAND_DRAWN: set[str] = set()  # figures authored by hand, not by the script


@pytest.fixture(scope="module")
def drawn():
    return {name: svg.render() for name, svg in diagrams.figures().items()}


def test_committed_figures_are_what_the_script_draws(drawn):
    stale = [
        name
        for name, text in drawn.items()
        if not (FIGURES / name).exists()
        or (FIGURES / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date: {stale}; run python tools/diagrams.py"
    assert diagrams.main(["--check"]) == 0


def test_every_figure_has_a_source(drawn):
    orphans = {p.name for p in FIGURES.glob("*.svg")} - set(drawn) - HAND_DRAWN
    assert not orphans, f"{orphans}: add them to tools/diagrams.py or HAND_DRAWN"


@pytest.mark.parametrize("path", sorted(FIGURES.glob("*.svg")), ids=lambda p: p.name)
def test_svg_well_formed_with_viewbox(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    x, y, w, h = map(float, root.get("viewBox").split())
    assert (x, y) == (0, 0) and 600 <= w <= 760 and 0 < h <= 600
    assert root.find(f"{SVG}title").text, "a title for screen readers"
    assert any(True for _ in root.iter(f"{SVG}text")), "a diagram with words"


def test_drawn_text_is_at_least_11px(drawn):
    for name, text in drawn.items():
        sizes = [float(v) for v in re.findall(r'font-size="([0-9.]+)"', text)]
        assert min(sizes) >= 11, name


def test_text_that_does_not_fit_is_refused():
    s = diagrams.Svg(640, 200, "test")
    s.box(10, 10, 200, 40, ["fits easily"])
    with pytest.raises(ValueError, match="does not fit"):
        s.box(10, 60, 60, 40, ["this line is far too long for the box"])
    with pytest.raises(ValueError, match="too tall"):
        s.box(10, 110, 300, 20, ["one", "two"])
    s.text(300, 100, "a free label")
    with pytest.raises(ValueError, match="overlaps 'a free label'"):
        s.text(310, 104, "another label")
    with pytest.raises(ValueError, match="leaves the canvas"):
        s.text(630, 100, "past the right edge", anchor="start")
    assert diagrams.text_width("WWW", 10) > diagrams.text_width("iii", 10)
