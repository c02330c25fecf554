"""A small PNG chart of requests per rolling window against the limit, with the standard library only.

The demos write one without needing matplotlib: a step line of how many requests fell in the
window ending at each moment, a red line at the limit, and labelled axes (a 5x7 bitmap font).
Each y axis starts at 0 with round ticks; one chart may stack several panels that share the
time axis (e.g. requests per minute against a pace, and the day's allocation used).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WindowPanel", "nice_ticks", "plot_window_panels", "plot_window_use", "window_series"]

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (215, 215, 215)
RED: Color = (200, 30, 30)
PALETTE: tuple[Color, ...] = ((31, 100, 180), (230, 120, 20), (40, 150, 60), (140, 60, 160))

# 5x7 glyphs, one string of 7 rows of 5 bits each.
_FONT = {
    "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111", "3": "11111000100010000010000011000101110",
    "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110", "9": "01110100011000101111000010001001100",
    ".": "00000000000000000000000000110001100", " ": "0" * 35, "/": "00000000010001000100010001000000000",
    "-": "00000000000000011111000000000000000", "(": "00010001000100001000010000010000010",
    ")": "01000001000001000010000100010001000", ":": "00000011000110000000011000110000000",
    "+": "00000001000010011111001000010000000", "'": "00100001000100000000000000000000000",
    "%": "11000110010001000100010001001100011", ",": "00000000000000000000011000010001000",
}
_LETTERS = {
    "A": "01110100011000111111100011000110001", "B": "11110100011000111110100011000111110",
    "C": "01110100011000010000100001000101110", "D": "11100100101000110001100011001011100",
    "E": "11111100001000011110100001000011111", "F": "11111100001000011110100001000010000",
    "G": "01110100011000010111100011000101111", "H": "10001100011000111111100011000110001",
    "I": "01110001000010000100001000010001110", "J": "00111000100001000010000101001001100",
    "K": "10001100101010011000101001001010001", "L": "10000100001000010000100001000011111",
    "M": "10001110111010110101100011000110001", "N": "10001100011100110101100111000110001",
    "O": "01110100011000110001100011000101110", "P": "11110100011000111110100001000010000",
    "Q": "01110100011000110001101011001001101", "R": "11110100011000111110101001001010001",
    "S": "01111100001000001110000010000111110", "T": "11111001000010000100001000010000100",
    "U": "10001100011000110001100011000101110", "V": "10001100011000110001100010101000100",
    "W": "10001100011000110101101011010101010", "X": "10001100010101000100010101000110001",
    "Y": "10001100010101000100001000010000100", "Z": "11111000010001000100010001000011111",
}
_FONT.update(_LETTERS)


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(WHITE) * width) for _ in range(height)]

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.rows[y][3 * x : 3 * x + 3] = bytes(color)

    def hline(self, x0: int, x1: int, y: int, color: Color) -> None:
        for x in range(min(x0, x1), max(x0, x1) + 1):
            self.dot(x, y, color)

    def vline(self, x: int, y0: int, y1: int, color: Color) -> None:
        for y in range(min(y0, y1), max(y0, y1) + 1):
            self.dot(x, y, color)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 1) -> None:
        for char in text.upper():
            glyph = _FONT.get(char, _FONT[" "])
            for row in range(7):
                for col in range(5):
                    if glyph[row * 5 + col] == "1":
                        for dy in range(scale):
                            for dx in range(scale):
                                self.dot(x + col * scale + dx, y + row * scale + dy, color)
            x += 6 * scale

    def text_up(self, x: int, y: int, text: str, color: Color = BLACK) -> None:
        """``text`` turned a quarter left, read from bottom to top, its first letter's foot at (x, y)."""
        for char in text.upper():
            glyph = _FONT.get(char, _FONT[" "])
            for row in range(7):
                for col in range(5):
                    if glyph[row * 5 + col] == "1":
                        self.dot(x + row, y - col, color)
            y -= 6

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + \
            chunk(b"IEND", b"")


def window_series(times: Sequence[float], window: float) -> list[tuple[float, int]]:
    """(t, requests in (t - window, t]) at every arrival and every expiry, in time order."""
    ordered = sorted(times)
    # At equal times, expiries (-1) come before arrivals (+1): the window is (t - window, t].
    events = sorted([(t, 1) for t in ordered] + [(t + window, -1) for t in ordered])
    series = []
    count = 0
    for t, step in events:
        count += step
        series.append((t, count))
    return series


def nice_ticks(high: float, most: int = 6) -> list[float]:
    """Round tick values from 0 up to at least ``high``: steps of 1, 2, 2.5 or 5 times a power of
    ten, at most ``most`` intervals (at least one).

    >>> nice_ticks(218.5)
    [0, 50, 100, 150, 200, 250]
    >>> nice_ticks(12_420)
    [0, 2500, 5000, 7500, 10000, 12500]
    """
    if not high > 0 or math.isinf(high):
        return [0, 1]
    rough = high / most
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power * most >= high)
    count = max(1, math.ceil(high / step))
    digits = max(0, 2 - math.floor(math.log10(step)))  # enough for steps such as 0.25 x 10^k
    ticks = [_round(round(step * i, digits)) for i in range(count + 1)]
    if ticks[-1] < high:  # float noise: one more step
        ticks.append(_round(round(step * (count + 1), digits)))
    return ticks


def _round(value: float) -> float:
    return int(value) if value == int(value) else value


def _tick_text(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"


@dataclass(frozen=True)
class WindowPanel:
    """One panel of a chart: each run's requests in the trailing ``window`` seconds over time, and
    a red line at ``limit``.

    >>> WindowPanel([("MINE", [0.0, 0.5])], window=60.0, limit=200, y_label="PER MINUTE").limit
    200
    """

    #: (label, request times in seconds) for each run; each run is drawn from its own first request.
    runs: Sequence[tuple[str, Sequence[float]]]
    #: Seconds each request counts for.
    window: float
    #: Where the red line is drawn (units per window).
    limit: float
    #: The y axis's label, e.g. ``"REQUESTS IN THE LAST 60 S"``.
    y_label: str
    #: The red line's label; default ``"LIMIT {limit}"``.
    limit_label: str | None = None


def plot_window_panels(path: str | Path, panels: Sequence[WindowPanel], title: str, *, width: int = 900,
                       panel_height: int = 300, tail: float | None = None) -> Path:
    """Write a PNG of ``panels`` stacked on one time axis (seconds from each run's first request).

    Every y axis starts at 0, has round ticks and its label; the x axis is labelled in seconds.
    ``tail`` is how many seconds to show after the last request (default: the shortest window).
    """
    if not panels:
        raise ValueError("plot_window_panels needs at least one panel")
    shown = min(p.window for p in panels) if tail is None else tail
    # Every run is drawn up to the same end: ``shown`` seconds after the latest last request.
    t_end = max((max(ts) - min(ts) + shown for p in panels for _, ts in p.runs if ts), default=shown)
    drawn: list[list[tuple[str, list[tuple[float, int]]]]] = []
    for panel in panels:
        series = []
        for label, ts in panel.runs:
            if ts:
                first = min(ts)
                points = [p for p in window_series([t - first for t in ts], panel.window) if p[0] <= t_end]
                series.append((label, [*points, (t_end, points[-1][1])]))
        drawn.append(series)
    x_ticks = nice_ticks(t_end or shown, most=8)
    t_max = x_ticks[-1]
    top_margin, gap, bottom_margin = 40, 30, 46
    height = top_margin + len(panels) * panel_height + (len(panels) - 1) * gap + bottom_margin
    canvas = _Canvas(width, height)
    left, right = 84, width - 20
    sx = (right - left) / t_max
    canvas.text(left, 12, title, BLACK, scale=2 if len(title) * 12 < width - left else 1)
    for index, (panel, series) in enumerate(zip(panels, drawn)):
        top = top_margin + index * (panel_height + gap)
        bottom = top + panel_height - 10
        highest = max([panel.limit] + [c for _, s in series for _, c in s])
        y_ticks = nice_ticks(highest * 1.08)
        y_max = y_ticks[-1]
        sy = (bottom - top) / y_max
        for value in y_ticks:
            y = bottom - round(value * sy)
            if value:
                canvas.hline(left, right, y, GREY)
            label = _tick_text(value)
            canvas.text(left - 6 - 6 * len(label), y - 3, label)
        canvas.text_up(4, (top + bottom) // 2 + 3 * len(panel.y_label), panel.y_label)
        canvas.hline(left, right, bottom, BLACK)
        canvas.vline(left, top, bottom, BLACK)
        for value in x_ticks:
            x = left + round(value * sx)
            canvas.vline(x, bottom, bottom + 4, BLACK)
            if index == len(panels) - 1:
                label = _tick_text(value)
                canvas.text(x - 3 * len(label), bottom + 8, label)
        limit_y = bottom - round(panel.limit * sy)
        canvas.hline(left, right, limit_y, RED)
        canvas.hline(left, right, limit_y - 1, RED)
        limit_label = panel.limit_label or f"LIMIT {_tick_text(_round(float(panel.limit)))}"
        canvas.text(right - 6 * len(limit_label), limit_y - 12, limit_label, RED)
        for number, (label, points) in enumerate(series):
            color = PALETTE[number % len(PALETTE)]
            previous_x, previous_y = left, bottom
            for t, count in points:
                x, y = left + round(t * sx), bottom - round(count * sy)
                canvas.hline(previous_x, x, previous_y, color)
                canvas.vline(x, previous_y, y, color)
                previous_x, previous_y = x, y
            canvas.text(left + 10, top + 4 + 12 * number, label, color)
    x_label = "SECONDS FROM THE FIRST REQUEST"
    canvas.text(left + (right - left) // 2 - 3 * len(x_label), height - 18, x_label)
    out = Path(path)
    out.write_bytes(canvas.png())
    return out


def plot_window_use(path: str | Path, runs: Sequence[tuple[str, Sequence[float]]], window: float,
                    limit: int, title: str, width: int = 900, height: int = 360,
                    tail: float | None = None, *, y_label: str | None = None) -> Path:
    """Write a PNG: for each (label, request times in seconds) run, requests in the trailing
    ``window`` seconds over time (each run from its own first request), and the ``limit`` line.
    ``tail`` is how many seconds to show after the last request (default: one window); ``y_label``
    defaults to ``"REQUESTS IN THE LAST {window} S"``. One panel of ``plot_window_panels``."""
    label = y_label if y_label is not None else f"REQUESTS IN THE LAST {window:g} S"
    panel = WindowPanel(runs, window, limit, label)
    return plot_window_panels(path, [panel], title, width=width, panel_height=height - 86, tail=tail)
