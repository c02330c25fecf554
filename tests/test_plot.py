"""The demos' PNG charts: y axes from 0 with round ticks, labelled axes, stacked panels."""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratewindow.analysis import WindowPanel, nice_ticks, plot_window_panels, plot_window_use


def pixels(path: Path) -> list[list[tuple[int, int, int]]]:
    """Decode the RGB PNGs ``_plot`` writes (8-bit, filter 0 on every row)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4 : idat])[0]
    raw = zlib.decompress(data[idat + 4 : idat + 4 + size])
    stride = 1 + 3 * width
    rows = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0
        rows.append([tuple(row[1 + 3 * x : 4 + 3 * x]) for x in range(width)])
    return rows


@given(st.floats(min_value=1e-3, max_value=1e9))
def test_ticks_start_at_0_are_round_and_cover_the_value(high: float) -> None:
    ticks = nice_ticks(high)
    assert ticks[0] == 0 and ticks[-1] >= high and 2 <= len(ticks) <= 7
    step = ticks[1] - ticks[0]
    assert all(math.isclose(b - a, step) for a, b in itertools.pairwise(ticks))
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def test_the_examples_from_the_issue_get_round_ticks() -> None:
    assert nice_ticks(190 * 1.08) == [0, 50, 100, 150, 200, 250]  # was 44 / 87 / 131 / 175
    assert nice_ticks(13_500 * 1.08) == [0, 2500, 5000, 7500, 10000, 12500, 15000]  # was 3105 / 6210 / ...


def test_one_panel_has_a_labelled_y_axis_from_zero(tmp_path: Path) -> None:
    path = plot_window_use(tmp_path / "one.png", [("RUN", [i / 190 for i in range(400)])], 1.0, 190,
                           "CALLS PER ROLLING 1 S WINDOW")
    rows = pixels(path)
    left = 84  # the y axis
    bottom = next(y for y in range(len(rows) - 1, 0, -1) if rows[y][left + 5] == (0, 0, 0))  # the x axis
    # Tick label "0" sits just left of the axis at the x axis's height; the y label left of it.
    assert any(rows[y][x] == (0, 0, 0) for y in range(bottom - 3, bottom + 4) for x in range(left - 12, left - 6))
    assert any(rows[y][x] == (0, 0, 0) for y in range(40, bottom) for x in range(4, 11))  # vertical label
    red_rows = {y for y, row in enumerate(rows) if row[left + 300] == (200, 30, 30)}
    assert red_rows, "the limit line"
    # The y axis runs to 250 (ticks 0..250): 190 sits at 190 / 250 of the panel's height.
    top = 40
    expected = bottom - round(190 * (bottom - top) / 250)
    assert min(abs(y - expected) for y in red_rows) <= 1


def test_panels_stack_on_one_time_axis(tmp_path: Path) -> None:
    times = [i / 30 for i in range(200)]
    one = pixels(plot_window_use(tmp_path / "one.png", [("A", times)], 6.0, 200, "T"))
    two = pixels(plot_window_panels(tmp_path / "two.png", [
        WindowPanel([("A", times)], 6.0, 200, "PER 6 S"),
        WindowPanel([("A", times)], 8640.0, 13_500, "PER DAY", limit_label="ALLOWANCE 13,500"),
    ], "T"))  # fmt: skip
    assert len(two) > len(one) and len(two[0]) == len(one[0])
    red = [y for y, row in enumerate(two) if row[400] == (200, 30, 30)]
    assert red and max(red) - min(red) > 250  # a limit line in each panel
    with pytest.raises(ValueError, match="at least one panel"):
        plot_window_panels(tmp_path / "none.png", [], "T")
