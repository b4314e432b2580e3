"""Report periods in the center's local time (DST weeks, month ends), the [[reports]]
configuration's errors by file, line and key, and the formats' number display."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stream.kpi.config_file import ConfigError, parse_config
from stream.readers.api import BadRequest
from stream.readers.reports import Period, last_finished, period_range, requested_span
from stream.readers.reports.render import fmt

BERLIN = ZoneInfo("Europe/Berlin")
H = 3_600_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=BERLIN).timestamp() * 1000)


def test_a_dst_day_and_week_are_local() -> None:
    day = period_range(Period.DAY, ms(2026, 3, 29, 12), BERLIN)  # the spring-forward day
    assert (day.start, day.end - day.start) == (ms(2026, 3, 29), 23 * H)
    week = period_range(Period.WEEK, ms(2026, 3, 29, 12), BERLIN)  # a Sunday
    assert week.start == ms(2026, 3, 23) and week.end == ms(2026, 3, 30)
    assert week.end - week.start == (7 * 24 - 1) * H


def test_the_last_finished_period_and_its_previous_one() -> None:
    span = last_finished(Period.MONTH, ms(2026, 3, 1, 0, 5), BERLIN)
    assert span.label == "2026-02"
    assert (span.range.start, span.range.end) == (ms(2026, 2, 1), ms(2026, 3, 1))
    assert (span.previous.start, span.previous.end) == (ms(2026, 1, 1), ms(2026, 2, 1))
    week = last_finished(Period.WEEK, ms(2026, 1, 5, 0, 0, 1), BERLIN)
    assert week.label == "2026-W01" and week.range.start == ms(2025, 12, 29)
    assert last_finished(Period.MINUTE, ms(2026, 1, 5, 10, 7, 30), BERLIN).label == "2026-01-05T1006"


def test_a_requested_date_picks_its_period() -> None:
    now = ms(2026, 12, 2, 9)
    span = requested_span("week", "2026-11-26", now, BERLIN)
    assert span.range.start == ms(2026, 11, 23) and span.label == "2026-W48"
    assert requested_span("day", None, now, BERLIN).label == "2026-12-01"
    for bad in (("year", None), ("day", "26/11/2026"), ("day", "2026-12-03")):
        with pytest.raises(BadRequest):
            requested_span(bad[0], bad[1], now, BERLIN)


REPORTS = """timezone = "UTC"

[[reports]]
period = "week"
directory = "/tmp/reports"
{extra}
"""


@pytest.mark.parametrize(("extra", "key", "words"), [
    ('format = "pdf"', "reports[0].format", "unknown format 'pdf'"),
    ('webhook = "slack"', "reports[0].webhook", "http(s)://"),
    ('scopes = ["campain:x"]', "reports[0].scopes", "bad scope"),
    ('colour = "red"', "reports[0].colour", "unknown key 'colour'"),
    ('name = "a b"', "reports[0].name", "bad report name"),
])
def test_a_bad_report_entry_names_file_line_and_key(extra: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(REPORTS.format(extra=extra), source="callkpi.toml", kpi_names=None)
    text = str(err.value)
    assert "callkpi.toml" in text and key in text and words in text, text
    assert ":6" in text or "line 6" in text, text


def test_a_report_entry_and_its_defaults() -> None:
    config = parse_config(REPORTS.format(extra='webhook = "https://chat.example/hooks/abc"'),
                          source="/etc/callkpi/callkpi.toml", kpi_names=None)
    [r] = config.reports
    assert (r.name, r.period, r.format, r.scopes, r.webhook) == (
        "week-1", "week", "html", ("center",), "https://chat.example/hooks/abc")
    relative = parse_config(REPORTS.format(extra="").replace("/tmp/reports", "out"), source="/etc/callkpi/callkpi.toml",
                            kpi_names=None)
    assert relative.reports[0].directory == "/etc/callkpi/out"
    with pytest.raises(ConfigError, match="period"):
        parse_config('[[reports]]\ndirectory = "x"\n', source="c.toml", kpi_names=None)


def test_numbers_are_shown_as_people_read_them() -> None:
    assert fmt("connect_rate", 0.4567) == "45.7 %"
    assert fmt("connect_rate", 0.012, change=True) == "+1.2 pp"
    assert fmt("aht_seconds", 183.4) == "183 s"
    assert fmt("attempts_completed", 12345) == "12,345"
    assert fmt("revenue", None) == "–"
