"""What every figure of the report shares: matplotlib's Agg backend, one seaborn style, one colour
per strategy, and the ``Drawing`` -> ``Figure`` step that renders a figure to PNG bytes.

A strategy's colour is fixed by its position in the suite, so it looks the same in every figure of
a report. Figure functions return ``Drawing``s, the matplotlib figure not yet rendered, so tests can
read its artists.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

STYLE = {"style": "whitegrid", "context": "notebook", "font_scale": 0.9}
DPI = 90  # about 1000 px wide: sharp on a laptop, small enough to embed many


@dataclass(frozen=True)
class Figure:
    name: str  # file name stem: [a-z0-9-] only
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Drawing:
    """A figure drawn but not yet rendered: ``fig`` is matplotlib's, for tests to inspect."""

    name: str
    title: str
    caption: str
    fig: matplotlib.figure.Figure

    def render(self) -> Figure:
        buffer = io.BytesIO()
        # No software version or date in the file: the same tables give the same bytes.
        self.fig.savefig(
            buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}
        )
        plt.close(self.fig)
        return Figure(self.name, self.title, self.caption, buffer.getvalue())


def palette(strategies: list[str]) -> dict[str, tuple]:
    colours = sns.color_palette("colorblind", max(len(strategies), 1))
    return dict(zip(strategies, colours, strict=True))


def slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", str(p).lower()).strip("-") for p in parts)


def styled():
    """The report's seaborn style and context, as two context managers."""
    return (
        sns.axes_style(STYLE["style"]),
        sns.plotting_context(STYLE["context"], font_scale=STYLE["font_scale"]),
    )
