"""The simulator's public configuration and output types."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEMO_CONFIG = Path(__file__).with_name("demo.toml")
"""The service configuration matched to the simulated center (targets, costs, compliance), for
`callkpi demo`."""

SCENARIOS: dict[str, str] = {
    "spam_flag": "one caller ID of the largest campaign is flagged as spam: its human-answer rate "
                 "collapses to ~10% of normal while the other numbers hold",
    "staffing_drop": "half of the agents log out (each after finishing the call in hand)",
    "carrier_outage": "a carrier outage: for ~8% of the run (10..45 min) most attempts end in "
                      "congestion/error and voice quality drops",
    "abandon_spike": "the predictive dialer over-dials: its abandon-rate target goes from the "
                     "configured value to 8% for the rest of the run",
    "ab_test": "an A/B test of a sales script: from then on every call.dialed carries variant A "
               "or B (50/50); with B, AB_TEST_LIFT of the live contacts that would not have "
               "bought or booked buy instead (a real effect on conversion_rate)",
    "aa_test": "an A/A test: every call.dialed carries variant A or B (50/50), and both are the "
               "same script (no effect: a test that finds one is a false positive)",
}
EXPERIMENT_VARIANTS: tuple[str, str] = ("A", "B")
"""The `variant` ids of the ab_test and aa_test scenarios (A is the control)."""
AB_TEST_LIFT = 0.08
"""ab_test: the share of B's non-buying live contacts turned into sales (about +70 % relative
conversion on the sales campaigns, whose contacts buy or book about 1 in 10)."""

INVALID_REASONS: tuple[str, ...] = (
    "oversize", "malformed_json", "not_an_object", "missing_field", "invalid_field",
    "unknown_type", "unknown_disposition", "out_of_range", "future_timestamp", "too_old",
    "unsupported_version",
)


@dataclass
class FaultConfig:
    """Delivery faults, each applied independently per event (all off by default).

    duplicate_rate: share of events sent a second time (identical bytes), usually within 30 s,
        one in five minutes to an hour later.
    reorder_window_s: every delivery is delayed by a uniform 0..window, which shuffles the order
        within that window of simulated time.
    late_rate / late_max_s: share of events delivered late, log-uniformly 1 min..late_max_s after
        their ts.
    invalid_rate: per valid event, the chance of one extra invalid message (raw bytes) covering
        the rejection reasons in INVALID_REASONS uniformly.
    """
    duplicate_rate: float = 0.0
    reorder_window_s: float = 0.0
    late_rate: float = 0.0
    late_max_s: float = 0.0
    invalid_rate: float = 0.0

    @classmethod
    def all_on(cls) -> FaultConfig:
        return cls(duplicate_rate=0.01, reorder_window_s=5.0, late_rate=0.005, late_max_s=7200.0,
                   invalid_rate=0.002)

    @property
    def any(self) -> bool:
        return bool(self.duplicate_rate or self.reorder_window_s or self.late_rate or self.invalid_rate)


@dataclass(kw_only=True)
class SimConfig:
    """A simulated run: `agents` agents for `hours` hours from `start_ms` (epoch ms)."""
    seed: int = 1
    agents: int = 50
    hours: float = 8.0
    start_ms: int
    scenario: str | None = None
    scenario_at: float = 0.4          # fraction of the run at which the scenario starts
    faults: FaultConfig = field(default_factory=FaultConfig)
    teams_of: int = 12                # agents per team
    abandon_target: float = 0.025     # the predictive dialers' pacing target (abandoned/connected)
    utc_offset_min: int = 0           # the center's local time, for the hour-of-day answer curve
    ts_style: str = "rfc3339"         # "rfc3339" (UTC, ms) or "mixed" (also +08:00 and epoch ms)
    repeat_lead_rate: float = 0.0     # share of dials re-calling an earlier lead of the same list
    earlier_leads: tuple[str, ...] = ()
    """Leads of earlier runs of the same center that repeat dials re-call (instead of this run's
    own), e.g. the customers of the days before (`Simulator.customers`): a month of daily runs
    chained this way has customers who buy in more than one week (customer retention)."""

    def __post_init__(self) -> None:
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        if self.agents < 1 or self.hours <= 0 or self.teams_of < 1:
            raise ValueError("agents, hours and teams_of must be positive")
        if not 0 <= self.scenario_at <= 1:
            raise ValueError("scenario_at is a fraction of the run (0..1)")
        if not 0 <= self.repeat_lead_rate <= 1:
            raise ValueError("repeat_lead_rate is a share of the dials (0..1)")
        if self.ts_style not in ("rfc3339", "mixed"):
            raise ValueError("ts_style is 'rfc3339' or 'mixed'")

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.hours * 3_600_000)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One Kafka message as the dialer sends it: when, with which key, which bytes."""
    deliver_ms: int
    key: bytes | None
    value: bytes
