"""The configuration file: defaults, every option, and every error naming its file and line."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stream.kpi.compliance import ComplianceGroup
from stream.kpi.config_file import ConfigError, ServiceConfig, load_config, parse_config
from stream.kpi.cost import CostRates

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "callkpi.toml"
KPIS = {"connect_rate", "abandon_rate", "aht_seconds", "calls_per_agent_hour",
        "qualified_leads", "conversions", "revenue"}
CUMULATIVE = {"qualified_leads", "conversions", "revenue"}


def parse(text: str, **kw: Any) -> ServiceConfig:
    kw.setdefault("kpi_names", KPIS)
    kw.setdefault("cumulative_kpis", CUMULATIVE)
    return parse_config(textwrap.dedent(text), source="callkpi.toml", **kw)


def marked_line(text: str) -> int:
    """The 1-based line of `text` that carries the `# <-` marker."""
    (line,) = [i for i, l in enumerate(textwrap.dedent(text).splitlines(), 1) if "# <-" in l]
    return line


def test_defaults():
    c = load_config(None)
    assert c == ServiceConfig() == parse("")
    assert c.timezone == "UTC" and c.tz.key == "UTC"
    assert c.conversation_threshold_ms == 30000 and c.connect_threshold_ms == 2000
    assert c.qualification_score == 70 and c.service_level_threshold_ms == 20_000
    assert parse("service_level_threshold_ms = 15000").service_level_threshold_ms == 15_000
    assert c.max_call_gap_seconds == 3600
    assert c.success_dispositions == {"sale", "appointment"}
    assert c.goal_dispositions == {"sale", "appointment", "qualified_lead"}
    assert c.compliance.default_limit == 0.03 and c.compliance.groups == ()
    assert c.costs.default == CostRates() and c.costs.currency == ""
    assert c.targets == () and c.live.call_expiry_seconds == 1800


def test_example_file_parses_and_sets_every_section():
    c = load_config(EXAMPLE, kpi_names=KPIS, cumulative_kpis=CUMULATIVE)
    assert c.timezone == "Europe/London"
    assert c.compliance.groups == (
        ComplianceGroup("uk-energy", ("energy-north", "energy-south"), 0.03),)
    assert c.compliance.limit_for("renewals") == 0.02
    # A per-campaign rate table inherits what it omits from the defaults.
    assert c.costs.rates_for("energy-north") == CostRates(18.5, 0.008, 0.001)
    assert c.costs.rates_for("renewals") == CostRates(22.0, 0.012, 0.002)
    assert c.costs.currency == "GBP"
    assert len(c.targets) == 5
    leads = c.targets[-1]
    assert leads.deadline == datetime(2026, 11, 27, 18, tzinfo=UTC)
    assert {t.scope for t in c.targets} >= {"agent:*@team:north", "campaign:*"}


def test_goal_dispositions_follow_success_by_default():
    c = parse('success_dispositions = ["sale"]')
    assert c.goal_dispositions == {"sale", "qualified_lead"}


def test_local_deadline_is_in_the_service_time_zone_and_strings_are_accepted():
    c = parse("""
        timezone = "America/New_York"
        [[targets]]
        kpi = "conversions"
        scope = "center"
        window = "week"
        goal = 100
        deadline = 2026-11-27T17:00:00
        [[targets]]
        kpi = "revenue"
        scope = "center"
        window = "month"
        goal = 1e5
        deadline = "2026-11-30T23:00:00Z"
        """)
    assert c.targets[0].deadline.utcoffset() == timedelta(hours=-5)
    assert c.targets[1].deadline == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert c.targets[0].name == "conversions center week"


# Each case: the text, with `# <-` on the line the error must name, and the start of the
# message after "callkpi.toml:<line>: ".
ERRORS = [
    ("""
     timezone = "UTC"
     timezon = "UTC"  # <-
     """, "timezon: unknown key 'timezon' (did you mean 'timezone'?)"),
    ("""
     timezone = "Europe/Londn"  # <-
     """, "timezone: unknown time zone 'Europe/Londn'"),
    ("""
     conversation_threshold_ms = 30.5  # <-
     """, "conversation_threshold_ms: must be an integer"),
    ("""
     connect_threshold_ms = -1  # <-
     """, "connect_threshold_ms: must be ≥ 0"),
    ("""
     service_level_threshold_ms = "20s"  # <-
     """, "service_level_threshold_ms: must be an integer"),
    ("""
     max_call_gap_seconds = -5  # <-
     """, "max_call_gap_seconds: must be ≥ 0"),
    ("""
     qualification_score = 170  # <-
     """, "qualification_score: must be ≤ 100"),
    ("""
     qualification_score = true  # <-
     """, "qualification_score: must be a number, got a boolean"),
    ("""
     success_dispositions = [
       "sale",
       "sales",
     ]  # the error names the key's line
     goal_dispositions = ["sale"]
     """.replace('success_dispositions = [', 'success_dispositions = [  # <-'),
     "success_dispositions: unknown disposition 'sales' (did you mean 'sale'?)"),
    ("""
     goal_dispositions = ["sale", "won"]  # <-
     """, "goal_dispositions: unknown disposition 'won'"),
    ("""
     [live]
     call_expiry_seconds = 0  # <-
     """, "live.call_expiry_seconds: must be ≥ 1"),
    ("""
     [live]
     call_expiry = 60  # <-
     """, "live.call_expiry: unknown key 'call_expiry'"),
    ("""
     [compliance]
     default_limit = 3  # <-
     """, "compliance.default_limit: must be a fraction in (0, 1], got 3 (3 % is written 0.03"),
    ("""
     [compliance.campaign_limits]
     c1 = 0.03
     c2 = 0  # <-
     """, "compliance.campaign_limits.c2: must be a fraction in (0, 1]"),
    ("""
     [compliance]
     status_rates = ["us_abandon_rate_30d", "uk_rate"]  # <-
     """, "compliance.status_rates: unknown rate 'uk_rate'"),
    ("""
     [[compliance.groups]]
     name = "a"
     campaigns = ["c1", "c2"]

     [[compliance.groups]]
     name = "b"
     campaigns = ["c3", "c2"]  # <-
     """, "compliance.groups[1].campaigns: campaign 'c2' is already in compliance group 'a' "
          "(compliance.groups[0])"),
    ("""
     [[compliance.groups]]
     name = "a"
     campaigns = ["c1"]
     [[compliance.groups]]
     name = "a"  # <-
     campaigns = ["c2"]
     """, "compliance.groups[1].name: duplicate compliance group name 'a'"),
    ("""
     [[compliance.groups]]  # <-
     campaigns = ["c1"]
     """, "compliance.groups[0]: a compliance group needs a name"),
    ("""
     [[compliance.groups]]
     name = "a"
     campaigns = []  # <-
     """, "compliance.groups[0].campaigns: a compliance group needs at least one campaign"),
    ("""
     [[compliance.groups]]
     name = "a"
     campaigns = ["c1"]
     limt = 0.02  # <-
     """, "compliance.groups[0].limt: unknown key 'limt' (did you mean 'limit'?)"),
    ("""
     [costs]
     currency = "EUR"
     cost_per_dial = -0.01  # <-
     """, "costs.cost_per_dial: must be ≥ 0"),
    ("""
     [costs]
     agent_cost_per_hour = 20

     [costs.campaigns.c1]
     agent_cost_per_hour = 25

     [costs.campaigns."c.2"]
     telephony_cost_per_minute = -1  # <-
     """, 'costs.campaigns."c.2".telephony_cost_per_minute: must be ≥ 0'),
    ("""
     [costs.campaigns.c1]
     agent_cost = 25  # <-
     """, "costs.campaigns.c1.agent_cost: unknown key 'agent_cost' "
          "(did you mean 'agent_cost_per_hour'?)"),
    ("""
     [costs]
     campaigns = { c1 = { cost_per_dial = "a lot" } }  # <-
     """, "costs.campaigns.c1.cost_per_dial: must be a number, got the string 'a lot'"),
    ("""
     [[targets]]
     kpi = "connect_rate"
     scope = "center"
     window = "today"
     goal = 0.3

     [[targets]]
     kpi = "abandon_rate"
     scope = "center"
     window = "1h"
     goal = 0.02
     direction = "lower"

     [[targets]]
     name = "typo"
     kpi = "conect_rate"  # <-
     scope = "center"
     window = "today"
     goal = 0.3
     """, "targets[2].kpi: unknown KPI 'conect_rate' (did you mean 'connect_rate'?)"),
    ("""
     [[targets]]
     kpi = "connect_rate"
     scope = "campain:*"  # <-
     window = "today"
     goal = 0.3
     """, "targets[0].scope: bad scope 'campain:*'"),
    ("""
     [[targets]]
     kpi = "connect_rate"
     scope = "center"
     window = "2h"  # <-
     goal = 0.3
     """, "targets[0].window: unknown window '2h'"),
    ("""
     [[targets]]
     kpi = "connect_rate"
     scope = "center"
     window = "today"
     goal = 0.3
     warn = 0.35  # <-
     """, "targets[0].warn: warn 0.35 must be at or below the goal 0.3 for direction 'higher'"),
    ("""
     [[targets]]
     kpi = "abandon_rate"
     scope = "center"
     window = "today"
     goal = 0.02
     direction = "lower"
     warn = 0.025
     critical = 0.022  # <-
     """, "targets[0].critical: critical 0.022 must be at or above warn 0.025 for direction "
          "'lower'"),
    ("""
     [[targets]]
     kpi = "abandon_rate"
     scope = "center"
     window = "today"
     goal = 0.02
     direction = "down"  # <-
     """, "targets[0].direction: must be 'higher' or 'lower'"),
    ("""
     [[targets]]
     kpi = "abandon_rate"
     scope = "center"
     window = "today"
     goal = "2%"  # <-
     """, "targets[0].goal: must be a number"),
    ("""
     [[targets]]  # <-
     kpi = "abandon_rate"
     scope = "center"
     goal = 0.02
     """, "targets[0]: a target needs window = ..."),
    ("""
     [[targets]]
     kpi = "abandon_rate"
     scope = "center"
     window = "today"
     goal = 0.02
     direction = "lower"
     deadline = 2026-11-27T18:00:00Z  # <-
     """, "targets[0].deadline: a deadline (pace to goal) needs a cumulative count KPI"),
    ("""
     [[targets]]
     kpi = "qualified_leads"
     scope = "center"
     window = "week"
     goal = 200
     deadline = "next friday"  # <-
     """, "targets[0].deadline: not an RFC 3339 date-time"),
    ("""
     [[targets]]
     kpi = "qualified_leads"
     scope = "center"
     window = "week"
     goal = 200
     deadline = "2026-11-27T18:00:00"  # <-
     """, "targets[0].deadline: an RFC 3339 deadline needs a UTC offset"),
    ("""
     [[targets]]
     kpi = "qualified_leads"
     scope = "center"
     window = "week"
     goal = 200
     deadline = 2026-11-27  # <-
     """, "targets[0].deadline: must be an RFC 3339 date-time"),
    ("""
     [[targets]]
     name = "leads"
     kpi = "qualified_leads"
     scope = "center"
     window = "week"
     goal = 200
     [[targets]]
     name = "leads"  # <-
     kpi = "conversions"
     scope = "center"
     window = "week"
     goal = 20
     """, "targets[1].name: duplicate target name 'leads' (also targets[0])"),
    ("""
     [[targets]]
     kpi = "qualified_leads"
     scope = "center"
     window = "week"
     goal = 200
     colour = "red"  # <-
     """, "targets[0].colour: unknown key 'colour'"),
    ("""
     [targets]  # <-
     kpi = "qualified_leads"
     """, "targets: must be an array of tables ([[targets]])"),
]


@pytest.mark.parametrize("text, message", ERRORS, ids=[m.split(":")[0] + f"-{i}"
                                                        for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_line_and_the_key(text, message):
    with pytest.raises(ConfigError) as info:
        parse(text)
    err = info.value
    assert str(err).startswith(f"callkpi.toml:{marked_line(text)}: {message}"), str(err)
    assert err.line == marked_line(text)


def test_multiline_string_content_is_not_mistaken_for_keys():
    text = """
    [[targets]]
    name = '''
    kpi = "fake"
    '''
    kpi = "nope"  # <-
    scope = "center"
    window = "today"
    goal = 1
    """
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert info.value.line == marked_line(text)


def test_toml_syntax_errors_keep_line_and_column():
    with pytest.raises(ConfigError) as info:
        parse('timezone = "UTC"\n[live]\ncall_expiry_seconds = = 5\n')
    assert info.value.line == 3 and info.value.column is not None
    assert str(info.value).startswith("callkpi.toml:3:")
    with pytest.raises(ConfigError) as info:
        parse('timezone = "UTC"\nqualification_score =')
    assert str(info.value).startswith("callkpi.toml:2: ")


def test_kpi_names_none_skips_only_the_kpi_check():
    c = parse("""
        [[targets]]
        kpi = "anything_goes"
        scope = "center"
        window = "today"
        goal = 1
        """, kpi_names=None)
    assert c.targets[0].kpi == "anything_goes"


def test_load_config_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config(missing)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'timezone = "\xff"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: not UTF-8"):
        load_config(bad)
    ok = tmp_path / "callkpi.toml"
    ok.write_text('[[targets]]\nkpi = "x"\nscope = "center"\nwindow = "today"\ngoal = 1\n')
    with pytest.raises(ConfigError) as info:
        load_config(ok, kpi_names=KPIS)
    assert str(info.value).startswith(f"{ok}:2: targets[0].kpi: unknown KPI 'x'")
    assert isinstance(info.value, ValueError)


def test_max_call_gap_reaches_the_thresholds():
    from stream.cli.commands import thresholds_of
    c = parse("max_call_gap_seconds = 900\n")
    assert c.max_call_gap_seconds == 900 and thresholds_of(c).max_call_gap_ms == 900_000
