"""The stacked bar geometry of the delivery health chart: pure, so checked number by number."""

from __future__ import annotations

import pytest

from portal.notifications.health_chart import (
    GAP,
    LEFT,
    PITCH,
    PLOT_HEIGHT,
    RIGHT,
    TOP,
    nice_ceiling,
    stacked_bars,
)

ORDER = ("sent", "retried", "failed")
BASELINE = TOP + PLOT_HEIGHT


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (-3, 0), (1, 1), (2, 2), (3, 5), (5, 5), (6, 10), (11, 20), (21, 50), (501, 1000)],
)
def test_scale_rounds_up_to_1_2_or_5_times_a_power_of_ten(value: int, expected: int) -> None:
    assert nice_ceiling(value) == expected


def test_heights_are_proportional_on_one_scale_and_stack_bottom_up() -> None:
    chart = stacked_bars(
        [{"sent": 10}, {}, {"failed": 5, "sent": 3, "retried": 2}, {"sent": 2}], ORDER
    )
    assert chart.scale == 10
    assert [c.index for c in chart.columns] == [0, 2, 3]  # the empty hour draws nothing
    full, mixed, small = chart.columns
    assert [(s.outcome, s.height) for s in full.segments] == [("sent", PLOT_HEIGHT)]
    assert full.segments[0].y == TOP
    # Bottom-up in ORDER, whatever order the counts came in; each height count × 140 / 10.
    assert [(s.outcome, s.count, s.height) for s in mixed.segments] == [
        ("sent", 3, 42.0),
        ("retried", 2, 28.0),
        ("failed", 5, 70.0),
    ]
    # Each segment sits exactly on the one below it, the lowest on the baseline.
    assert mixed.segments[0].y + mixed.segments[0].height == BASELINE
    for lower, upper in zip(mixed.segments, mixed.segments[1:], strict=False):
        assert upper.y + upper.height == lower.y
    assert small.segments[0].height == pytest.approx(small.total * PLOT_HEIGHT / chart.scale)
    assert {s.x for s in mixed.segments} == {LEFT + 2 * PITCH}
    assert {s.width for s in mixed.segments} == {PITCH - GAP}


def test_a_scale_that_is_not_a_round_tenth_keeps_exact_touching_edges() -> None:
    chart = stacked_bars([{"sent": 1, "retried": 1, "failed": 1}, {"sent": 7}], ORDER)
    assert chart.scale == 10
    first = chart.columns[0]
    top = first.segments[-1]
    assert top.y == round(BASELINE - 3 * PLOT_HEIGHT / 10, 2)
    assert sum(s.height for s in first.segments) == pytest.approx(3 * PLOT_HEIGHT / 10)


def test_outcomes_outside_the_order_are_left_out() -> None:
    chart = stacked_bars([{"sent": 2, "other": 100}], ORDER)
    assert chart.scale == 2
    assert chart.columns[0].total == 2
    assert [s.outcome for s in chart.columns[0].segments] == ["sent"]
    assert chart.columns[0].counts == {"sent": 2}


def test_gridlines_at_zero_half_and_top_of_the_scale() -> None:
    chart = stacked_bars([{"sent": 17}], ORDER)
    assert [(g.value, g.y) for g in chart.gridlines] == [
        (0, BASELINE),
        (10, BASELINE - PLOT_HEIGHT / 2),
        (20, TOP),
    ]
    # No "0.5" gridline for a scale of 1.
    assert [g.value for g in stacked_bars([{"sent": 1}], ORDER).gridlines] == [0, 1]


def test_marked_outcome_flags_its_columns() -> None:
    chart = stacked_bars([{"sent": 900, "failed": 1}, {"sent": 5}], ORDER, mark="failed")
    assert [c.marked for c in chart.columns] == [True, False]
    assert chart.columns[0].center == LEFT + (PITCH - GAP) / 2


def test_ticks_at_their_column_and_none_outside_the_chart() -> None:
    chart = stacked_bars([{}] * 48, ORDER, ticks=[(0, "a"), (24, "b"), (48, "c"), (-1, "d")])
    assert [(t.x, t.label) for t in chart.ticks] == [(LEFT, "a"), (LEFT + 24 * PITCH, "b")]
    assert chart.right == LEFT + 48 * PITCH
    assert chart.width == chart.right + RIGHT


def test_empty_chart_has_no_bars_and_only_the_baseline() -> None:
    chart = stacked_bars([{}] * 168, ORDER)
    assert chart.empty
    assert chart.scale == 0
    assert chart.columns == ()
    assert [(g.value, g.y) for g in chart.gridlines] == [(0, BASELINE)]
    assert stacked_bars([], ORDER).empty
    assert not stacked_bars([{"sent": 1}], ORDER).empty
