"""KB version names sort by creation time, also within one second (pruning relies on it)."""

from __future__ import annotations

import datetime as dt

from copilot.kb.versions import _VERSION_TAIL, is_version_of, new_version_name


def test_names_made_in_one_second_sort_in_the_order_they_were_made() -> None:
    names = [new_version_name("kb") for _ in range(200)]
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(is_version_of("kb", n) and _VERSION_TAIL.search(n) for n in names)


def test_a_repeated_or_earlier_clock_still_gives_a_greater_name() -> None:
    noon = dt.datetime(2026, 12, 7, 12, 0, 0, 5, tzinfo=dt.UTC)
    first = new_version_name("kb2", noon)
    again = new_version_name("kb2", noon)
    earlier = new_version_name("kb2", noon - dt.timedelta(microseconds=3))
    assert first < again < earlier
    assert first == "kb2.v20261207120000-000005"


def test_a_later_second_sorts_after_every_name_of_the_second_before() -> None:
    a = new_version_name("kb3", dt.datetime(2026, 12, 7, 12, 0, 0, 999_999, tzinfo=dt.UTC))
    b = new_version_name("kb3", dt.datetime(2026, 12, 7, 12, 0, 1, 0, tzinfo=dt.UTC))
    assert a < b
