"""`[[experiments]]` in the configuration file: what it sets, and every mistake named by file,
line and key like the rest of the file."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from stream.kpi.config_file import ConfigError, ServiceConfig, load_config, parse_config
from stream.kpi.experiments import Experiment, Guardrail, experiment_kpis
from tests.unit.test_config_file import EXAMPLE, marked_line

KPIS = experiment_kpis()


def parse(text: str) -> ServiceConfig:
    return parse_config(textwrap.dedent(text), source="callkpi.toml", kpi_names=None,
                        experiment_kpis=KPIS)


def test_an_experiment_with_everything():
    c = parse("""
        timezone = "Europe/Paris"
        [[experiments]]
        name = "script-v2"
        variants = ["script-v1", "script-v2"]
        control = "script-v1"
        primary_kpi = "conversion_rate"
        minimum_detectable_effect = 0.10
        campaigns = ["solar-q4"]
        window = "week"
        start = 2026-11-30T08:00:00
        [[experiments.guardrails]]
        kpi = "complaint_rate"
        direction = "lower"
        tolerance = 0.2
        [[experiments.guardrails]]
        kpi = "aht_seconds"
        direction = "lower"
        tolerance = 0.15
        """)
    (e,) = c.experiments
    assert e == Experiment(
        name="script-v2", variants=("script-v1", "script-v2"), control="script-v1",
        primary_kpi="conversion_rate", minimum_detectable_effect=0.10,
        guardrails=(Guardrail("complaint_rate", "lower", 0.2),
                    Guardrail("aht_seconds", "lower", 0.15)),
        campaigns=("solar-q4",), window="week",
        start=datetime(2026, 11, 30, 7, tzinfo=UTC), end=None)
    assert e.scopes == ("variant:script-v1", "variant:script-v2")


def test_the_first_variant_is_the_control_and_the_window_defaults_to_30_days():
    (e,) = parse("""
        [[experiments]]
        name = "ab"
        variants = ["A", "B", "C"]
        primary_kpi = "connect_rate"
        minimum_detectable_effect = 0.05
        """).experiments
    assert (e.control, e.window, e.guardrails, e.campaigns) == ("A", "30d", (), ())


def test_the_example_file_declares_an_experiment():
    c = load_config(EXAMPLE, kpi_names=None, experiment_kpis=KPIS)
    assert c.experiments and c.experiments[0].primary_kpi == "conversion_rate"


BASE = """
    [[experiments]]
    name = "ab"
    variants = ["A", "B"]
    primary_kpi = "conversion_rate"
    minimum_detectable_effect = 0.1
    """
ERRORS = [
    ("""
     [[experiments]]
     name = "ab"
     variants = ["A", "B"]
     primary_kpi = "aht_seconds"  # <-
     minimum_detectable_effect = 0.1
     """, "experiments[0].primary_kpi: 'aht_seconds' is not a ratio of counts"),
    ("""
     [[experiments]]
     name = "ab"
     variants = ["A", "B"]
     primary_kpi = "occupancy"  # <-
     minimum_detectable_effect = 0.1
     """, "experiments[0].primary_kpi: 'occupancy' is not a ratio of counts"),
    ("""
     [[experiments]]
     name = "ab"
     variants = ["A", "B"]
     primary_kpi = "conversoin_rate"  # <-
     minimum_detectable_effect = 0.1
     """, "experiments[0].primary_kpi: unknown KPI 'conversoin_rate' (did you mean "
          "'conversion_rate'?)"),
    ("""
     [[experiments]]
     name = "ab"
     variants = ["A"]  # <-
     primary_kpi = "conversion_rate"
     minimum_detectable_effect = 0.1
     """, "experiments[0].variants: an experiment needs at least two variants"),
    ("""
     [[experiments]]
     name = "ab"
     variants = ["A", "B"]
     control = "C"  # <-
     primary_kpi = "conversion_rate"
     minimum_detectable_effect = 0.1
     """, "experiments[0].control: the control 'C' is not one of the variants A, B"),
    ("""
     [[experiments]]
     name = "ab"
     variants = ["A", "B"]
     primary_kpi = "conversion_rate"
     minimum_detectable_effect = 10.5  # <-
     """, "experiments[0].minimum_detectable_effect: must be a relative change in (0, 10]"),
    ("""
     [[experiments]]  # <-
     name = "ab"
     variants = ["A", "B"]
     primary_kpi = "conversion_rate"
     """, "experiments[0]: an experiment needs minimum_detectable_effect = ..."),
    (BASE + """
     window = "fortnight"  # <-
     """, "experiments[0].window: unknown window 'fortnight'"),
    (BASE + """
     colour = "red"  # <-
     """, "experiments[0].colour: unknown key 'colour'"),
    (BASE + """
     start = 2026-12-01T10:00:00Z
     end = 2026-12-01T09:00:00Z  # <-
     """, "experiments[0].end: the end must be after the start"),
    (BASE + """
     [[experiments.guardrails]]
     kpi = "complaint_rate"
     direction = "down"  # <-
     tolerance = 0.1
     """, "experiments[0].guardrails[0].direction: must be 'higher' (more is better) or 'lower'"),
    (BASE + """
     [[experiments.guardrails]]
     kpi = "complaint_rate"
     direction = "lower"
     tolerance = -0.1  # <-
     """, "experiments[0].guardrails[0].tolerance: must be ≥ 0"),
    (BASE + """
     [[experiments.guardrails]]
     kpi = "cost_per_call"  # <-
     direction = "lower"
     tolerance = 0.1
     """, "experiments[0].guardrails[0].kpi: unknown KPI 'cost_per_call'"),
    (BASE + """
     [[experiments]]
     name = "ab2"
     variants = ["B", "C"]  # <-
     primary_kpi = "conversion_rate"
     minimum_detectable_effect = 0.1
     """, "experiments[1].variants: variant 'B' is already an arm of experiment 'ab'"),
    (BASE + """
     [[experiments]]
     name = "ab"  # <-
     variants = ["C", "D"]
     primary_kpi = "conversion_rate"
     minimum_detectable_effect = 0.1
     """, "experiments[1].name: duplicate experiment name 'ab'"),
    ("""
     [[experiments]]
     name = "a b"  # <-
     variants = ["A", "B"]
     primary_kpi = "conversion_rate"
     minimum_detectable_effect = 0.1
     """, "experiments[0].name: bad experiment name 'a b'"),
]


@pytest.mark.parametrize("text, message", ERRORS, ids=[f"{i}" for i in range(len(ERRORS))])
def test_errors_name_the_line_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith(f"callkpi.toml:{marked_line(text)}: {message}"), \
        str(info.value)
