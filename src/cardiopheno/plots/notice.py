"""A figure that says why there is no plot (a declared output must exist even without data)."""

from __future__ import annotations

import logging
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)


def message_figure(message: str, title: str = ""):
    """A blank panel with ``message`` (wrapped) in the middle; the message is logged as a warning."""
    log.warning("%s%s", f"{title}: " if title else "", message)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.text(
        0.5, 0.5, textwrap.fill(message, 70), ha="center", va="center", fontsize=9,
        transform=ax.transAxes,
    )  # fmt: skip
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return fig


def not_enough_data(reason: str, title: str = ""):
    """:func:`message_figure` reading "not enough data: <reason>"."""
    return message_figure(f"not enough data: {reason}", title)
