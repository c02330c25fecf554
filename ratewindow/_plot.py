"""A small PNG chart of requests per rolling window against the limit, with the standard library only.

The demo writes one without needing matplotlib: a step line of how many requests fell in the
window ending at each moment, a red line at the limit, and labelled axes (a 5x7 bitmap font).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

__all__ = ["plot_window_use", "window_series"]

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


def plot_window_use(path: str | Path, runs: Sequence[tuple[str, Sequence[float]]], window: float,
                    limit: int, title: str, width: int = 900, height: int = 360,
                    tail: float | None = None) -> Path:
    """Write a PNG: for each (label, request times in seconds) run, requests in the trailing
    ``window`` seconds over time (each run from its own first request), and the ``limit`` line.
    ``tail`` is how many seconds to show after the last request (default: one window)."""
    canvas = _Canvas(width, height)
    left, right, top, bottom = 60, width - 20, 40, height - 50
    shown = window if tail is None else tail
    series = []
    for label, ts in runs:
        if ts:
            end = max(ts) - min(ts) + shown
            points = window_series([t - min(ts) for t in ts], window)
            series.append((label, [p for p in points if p[0] <= end]))
    t_max = max((s[-1][0] for _, s in series if s), default=shown) or shown
    y_max = max([limit] + [c for _, s in series for _, c in s]) * 1.15
    sx = (right - left) / t_max
    sy = (bottom - top) / y_max
    for step in range(1, 5):  # grid
        y = bottom - int(y_max * step / 5 * sy)
        canvas.hline(left, right, y, GREY)
        canvas.text(4, y - 3, f"{y_max * step / 5:.0f}")
    canvas.hline(left, right, bottom, BLACK)
    canvas.vline(left, top, bottom, BLACK)
    for step in range(0, 6):
        x = left + int((right - left) * step / 5)
        canvas.vline(x, bottom, bottom + 4, BLACK)
        canvas.text(x - 10, bottom + 8, f"{t_max * step / 5:.1f}")
    canvas.text(left + (right - left) // 2 - 40, bottom + 22, "SECONDS")
    limit_y = bottom - int(limit * sy)
    canvas.hline(left, right, limit_y, RED)
    canvas.hline(left, right, limit_y - 1, RED)
    canvas.text(right - 90, limit_y - 12, f"LIMIT {limit}", RED)
    for index, (label, points) in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        previous_x, previous_y = left, bottom
        for t, count in points:
            x, y = left + int(t * sx), bottom - int(count * sy)
            canvas.hline(previous_x, x, previous_y, color)
            canvas.vline(x, previous_y, y, color)
            previous_x, previous_y = x, y
        canvas.text(left + 10, top + 4 + 12 * index, label, color)
    canvas.text(left, 12, title, BLACK, scale=2 if len(title) * 12 < width - left else 1)
    out = Path(path)
    out.write_bytes(canvas.png())
    return out
