"""Checking request times against rates, and charting them: what ``ratewindow check`` and the demos use.

>>> from ratewindow import Rate
>>> from ratewindow.analysis import analyse
>>> report = analyse([0.0, 0.4, 0.9, 1.0], Rate(3, 1.0))
>>> report.most_in_window, report.violations
(3.0, ())
"""

from ratewindow._analysis import WindowReport, analyse
from ratewindow._plot import WindowPanel, nice_ticks, plot_window_panels, plot_window_use, window_series

__all__ = ["WindowPanel", "WindowReport", "analyse", "nice_ticks", "plot_window_panels", "plot_window_use",
           "window_series"]
