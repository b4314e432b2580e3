"""`[[experiments]]` in the configuration file: what it sets, and every mistake named by file,
line and key like the rest of the file."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from stream.kpi.config_file import ConfigError, ServiceConfig, load_config, parse_config
from stream.kpi.experiments import Experiment, Guardrail, experiment_kpis
from tests.config_text import Value, toml_table
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


def experiment(mark: str | None = None, **fields: Value) -> str:
    """The smallest valid experiment with `fields` over it; `mark` as in toml_table."""
    return toml_table("experiments", mark, **{
        "name": "ab", "variants": ["A", "B"], "primary_kpi": "conversion_rate",
        "minimum_detectable_effect": 0.1, **fields})


def guardrail(mark: str | None = None, **fields: Value) -> str:
    return toml_table("experiments.guardrails", mark, **{
        "kpi": "complaint_rate", "direction": "lower", "tolerance": 0.1, **fields})


ERRORS = [
    (experiment("primary_kpi", primary_kpi="aht_seconds"),
     "experiments[0].primary_kpi: 'aht_seconds' is not a ratio of counts"),
    (experiment("primary_kpi", primary_kpi="occupancy"),
     "experiments[0].primary_kpi: 'occupancy' is not a ratio of counts"),
    (experiment("primary_kpi", primary_kpi="conversoin_rate"),
     "experiments[0].primary_kpi: unknown KPI 'conversoin_rate' (did you mean "
     "'conversion_rate'?)"),
    (experiment("variants", variants=["A"]),
     "experiments[0].variants: an experiment needs at least two variants"),
    (experiment("control", control="C"),
     "experiments[0].control: the control 'C' is not one of the variants A, B"),
    (experiment("minimum_detectable_effect", minimum_detectable_effect=10.5),
     "experiments[0].minimum_detectable_effect: must be a relative change in (0, 10]"),
    (experiment("experiments", minimum_detectable_effect=None),
     "experiments[0]: an experiment needs minimum_detectable_effect = ..."),
    (experiment("window", window="fortnight"), "experiments[0].window: unknown window 'fortnight'"),
    (experiment("colour", colour="red"), "experiments[0].colour: unknown key 'colour'"),
    (experiment("end", start=datetime(2026, 12, 1, 10, tzinfo=UTC),
                end=datetime(2026, 12, 1, 9, tzinfo=UTC)),
     "experiments[0].end: the end must be after the start"),
    (experiment() + guardrail("direction", direction="down"),
     "experiments[0].guardrails[0].direction: must be 'higher' (more is better) or 'lower'"),
    (experiment() + guardrail("tolerance", tolerance=-0.1),
     "experiments[0].guardrails[0].tolerance: must be ≥ 0"),
    (experiment() + guardrail("kpi", kpi="cost_per_call"),
     "experiments[0].guardrails[0].kpi: unknown KPI 'cost_per_call'"),
    (experiment() + experiment("variants", name="ab2", variants=["B", "C"]),
     "experiments[1].variants: variant 'B' is already an arm of experiment 'ab'"),
    (experiment() + experiment("name", variants=["C", "D"]),
     "experiments[1].name: duplicate experiment name 'ab'"),
    (experiment("name", name="a b"), "experiments[0].name: bad experiment name 'a b'"),
]


@pytest.mark.parametrize("text, message", ERRORS, ids=[f"{i}" for i in range(len(ERRORS))])
def test_errors_name_the_line_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith(f"callkpi.toml:{marked_line(text)}: {message}"), \
        str(info.value)
