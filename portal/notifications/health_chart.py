"""The geometry of a stacked bar chart, for server-rendered inline SVG (no script, no CSS of
its own: the template gives each shape a class the portal's stylesheet colours).

Pure: counts in, coordinates out, so the drawing is unit-tested without a page. The delivery
health chart (:mod:`.delivery_health`) draws one column per hour with this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Horizontal distance between two columns, and the blank part of it (so bars stay apart).
PITCH = 5.0
GAP = 1.0
#: Room for the scale's numbers on the left, the day labels below, and a little air.
LEFT = 40.0
RIGHT = 8.0
TOP = 10.0
PLOT_HEIGHT = 140.0
#: Below the baseline: a mark under columns that need attention, then the tick labels.
MARK_SIZE = 4.0
BOTTOM = 30.0


@dataclass(frozen=True)
class Segment:
    """One outcome's part of one column."""

    outcome: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Column:
    index: int
    total: int
    counts: Mapping[str, int]
    segments: tuple[Segment, ...]
    #: The column holds the outcome the caller asked to mark (drawn below the baseline).
    marked: bool
    #: Horizontal centre, for the mark.
    center: float


@dataclass(frozen=True)
class Gridline:
    y: float
    value: int


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    left: float
    right: float
    top: float
    baseline: float
    #: The value at the top of the plot (0 when there is nothing to draw).
    scale: int
    #: Only columns with something in them: an empty hour draws nothing.
    columns: tuple[Column, ...]
    gridlines: tuple[Gridline, ...]
    ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not self.columns


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (0 for nothing): a scale people
    read at a glance, with a gridline at its half that is a whole number from 2 up."""
    if value <= 0:
        return 0
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def stacked_bars(
    columns: Sequence[Mapping[str, int]],
    order: Sequence[str],
    *,
    ticks: Sequence[tuple[int, str]] = (),
    mark: str | None = None,
) -> Chart:
    """Lay out one stacked column per entry of ``columns`` (outcome → count), outcomes
    stacked bottom-up in ``order`` (others are ignored), every height proportional to its
    count on one scale for the whole chart.

    ``ticks`` are (column index, label) pairs placed at the left edge of that column;
    ``mark`` names an outcome whose columns also get a mark under the baseline, so a small
    count of it is seen even when its segment is a sliver.
    """
    plot_width = PITCH * len(columns)
    baseline = TOP + PLOT_HEIGHT
    totals = [sum(counts.get(outcome, 0) for outcome in order) for counts in columns]
    scale = nice_ceiling(max(totals, default=0))
    drawn = []
    for index, (counts, total) in enumerate(zip(columns, totals, strict=True)):
        if total <= 0:
            continue
        x = LEFT + index * PITCH
        segments = []
        below = 0
        for outcome in order:
            count = counts.get(outcome, 0)
            if count <= 0:
                continue
            # Both edges from running totals: the segments of a column touch exactly and its
            # top is at total / scale however the rounding falls.
            bottom_y = _y(below, scale, baseline)
            top_y = _y(below + count, scale, baseline)
            segments.append(
                Segment(
                    outcome, count, _tidy(x), top_y, _tidy(PITCH - GAP), _tidy(bottom_y - top_y)
                )
            )
            below += count
        drawn.append(
            Column(
                index=index,
                total=total,
                counts={o: counts[o] for o in order if counts.get(o, 0) > 0},
                segments=tuple(segments),
                marked=mark is not None and counts.get(mark, 0) > 0,
                center=_tidy(x + (PITCH - GAP) / 2),
            )
        )
    values = [0, scale] if scale else [0]
    if scale >= 2 and scale % 2 == 0:
        values.insert(1, scale // 2)
    return Chart(
        width=_tidy(LEFT + plot_width + RIGHT),
        height=_tidy(baseline + BOTTOM),
        left=_tidy(LEFT),
        right=_tidy(LEFT + plot_width),
        top=_tidy(TOP),
        baseline=_tidy(baseline),
        scale=scale,
        columns=tuple(drawn),
        gridlines=tuple(Gridline(_y(v, scale, baseline), v) for v in values),
        ticks=tuple(
            Tick(_tidy(LEFT + index * PITCH), label)
            for index, label in ticks
            if 0 <= index < len(columns)
        ),
    )


def _y(value: int, scale: int, baseline: float) -> float:
    if scale <= 0:
        return _tidy(baseline)
    return _tidy(baseline - value * PLOT_HEIGHT / scale)


def _tidy(value: float) -> float:
    """Two decimals, and none for a whole number: a week of bars is a thousand shapes, so
    "40" rather than "40.0" in each attribute keeps the page noticeably smaller."""
    value = round(float(value), 2)
    return int(value) if value.is_integer() else value
