"""Checking a record of request times against a rate: the most in any window, violations, utilisation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ratewindow._rate import Rate

__all__ = ["WindowReport", "analyse"]


@dataclass(frozen=True)
class WindowReport:
    """What a list of request times did against one ``Rate``.

    Windows are half-open, (t - window, t], as the limiters count them.
    """

    #: The rate checked against.
    rate: Rate
    #: Number of requests (total cost when costs are given).
    total: float
    #: The most units in any window.
    most_in_window: float
    #: (first, last, units) of each maximal run of windows holding more than the limit.
    violations: tuple[tuple[float, float, float], ...]
    #: Seconds from the first request to the last.
    duration: float

    def least_duration(self) -> float:
        """The least seconds from first to last request that the rate allows for ``total`` units."""
        return max(0.0, (math.ceil(self.total / self.rate.limit) - 1) * self.rate.window)

    @property
    def utilisation(self) -> float:
        """The least duration the rate allows for these units, divided by the actual duration:
        1.0 is as fast as the limit allows; 0.9 means 10 % slower than it allows; above 1.0, faster
        than it allows (there are violations). 0.0 when all the units fit in one window, since the
        rate then sets no least duration (``least_duration()`` is 0.0): no pace to compare with."""
        if self.duration <= 0:
            return 1.0 if self.total else 0.0
        return self.least_duration() / self.duration


def analyse(times: Sequence[float], rate: Rate, costs: Sequence[float] | None = None) -> WindowReport:
    """Slide a window over ``times`` (seconds, any order) in O(n log n); see ``WindowReport``."""
    pairs = sorted(zip(times, costs if costs is not None else [1.0] * len(times)))
    window = rate.window
    most = 0.0
    in_window = 0.0
    first = 0
    violations: list[tuple[float, float, float]] = []
    run: list[float] | None = None
    for t, cost in pairs:
        in_window += cost
        while pairs[first][0] <= t - window:
            in_window -= pairs[first][1]
            first += 1
        if in_window > most:
            most = in_window
        if in_window > rate.limit:
            if run is None:
                run = [pairs[first][0], t, in_window]
            else:
                run[1] = t
                run[2] = max(run[2], in_window)
        elif run is not None:
            violations.append((run[0], run[1], run[2]))
            run = None
    if run is not None:
        violations.append((run[0], run[1], run[2]))
    total = sum(cost for _, cost in pairs)
    duration = pairs[-1][0] - pairs[0][0] if pairs else 0.0
    return WindowReport(rate, total, most, tuple(violations), duration)
