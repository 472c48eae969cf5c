"""A handler's time ends before its task's lease does (pgflow.worker.runner)."""

from __future__ import annotations

import pytest

from pgflow.worker.runner import handler_deadline, report_margin


@pytest.mark.parametrize(
    ("timeout", "margin"),
    [(0.4, 0.2), (1, 0.25), (2, 0.25), (5, 0.5), (10, 1.0), (60, 1.0), (3600, 1.0)],
)
def test_the_report_margin_is_a_tenth_of_the_timeout_within_its_bounds(
    timeout: float, margin: float
) -> None:
    # at least a quarter second, at most one, never over half the timeout
    assert report_margin(timeout) == pytest.approx(margin)


def test_a_leased_handler_ends_its_margin_before_the_lease_however_late_it_started() -> None:
    # claim sent at 100.0 with a 60 s timeout: the lease ends at 160 at the earliest
    assert handler_deadline(60, leased_at=100.0, now=100.2) == pytest.approx(159.0)
    assert handler_deadline(60, leased_at=100.0, now=130.0) == pytest.approx(159.0)
    assert handler_deadline(1, leased_at=100.0, now=100.05) == pytest.approx(100.75)


def test_without_a_lease_the_handler_gets_its_whole_timeout_from_now() -> None:
    assert handler_deadline(60, leased_at=None, now=100.2) == pytest.approx(160.2)
