"""A model outbound call center: agents, campaigns, dialers, customers -> v1 events.

A discrete-event simulation (one heap of timed actions, simulated milliseconds, no wall clock,
one `random.Random` per concern). Whatever the model knows at an action's time it emits at once,
even events with a later ts (a connected call's end, wrap-up, survey...): emitted events go to the
delivery layer (`stream.sim.delivery`), a heap ordered by delivery time that releases an event
only when the simulation clock has passed it. See docs/simulator.md for the parameters.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from enum import IntEnum
from heapq import heappop, heappush
from random import Random
from typing import Any, NamedTuple

from stream.contract import DISPOSITIONS
from stream.sim.config import AB_TEST_LIFT, EXPERIMENT_VARIANTS, SimConfig

MIN = 60_000
HOUR = 3_600_000

# ----------------------------------------------------------------------------- parameters

# Hour-of-day factor on the human-answer rate (local time): lunch dip, evening peak.
HOUR_FACTOR = [0.55, 0.5, 0.5, 0.5, 0.5, 0.5, 0.55, 0.65, 0.8, 0.95, 1.0, 1.0,
               0.82, 0.88, 0.95, 0.97, 1.0, 1.12, 1.18, 1.12, 1.0, 0.85, 0.7, 0.6]

# Disposition mixes of a live person reached, by campaign kind.
_DISPO_ORDER = ("sale", "appointment", "qualified_lead", "callback_requested", "not_interested",
                "refused", "dnc", "wrong_party", "no_decision", "other")
DISPOSITION_MIX = {
    "sales":       (0.075, 0.02, 0.05, 0.09, 0.36, 0.14, 0.03, 0.07, 0.11, 0.055),
    "appointment": (0.01, 0.10, 0.06, 0.10, 0.36, 0.13, 0.03, 0.06, 0.10, 0.05),
    "leads":       (0.0, 0.05, 0.13, 0.12, 0.35, 0.10, 0.02, 0.08, 0.10, 0.05),
    "winback":     (0.14, 0.03, 0.04, 0.10, 0.35, 0.12, 0.02, 0.03, 0.12, 0.05),
}
# Talk time by disposition: lognormal (median seconds, sigma).
TALK = {"sale": (540, 0.4), "appointment": (390, 0.4), "qualified_lead": (340, 0.45),
        "callback_requested": (155, 0.5), "not_interested": (125, 0.6), "refused": (60, 0.6),
        "dnc": (40, 0.5), "wrong_party": (32, 0.5), "no_decision": (260, 0.5), "other": (115, 0.7),
        "answering_machine": (11, 0.4)}
LONG_CALLS = {"sale", "appointment", "qualified_lead", "no_decision"}
ALWAYS_RESOLVED = {"sale", "appointment", "qualified_lead", "not_interested", "refused", "dnc",
                   "wrong_party"}
assert set(TALK) <= DISPOSITIONS and set(_DISPO_ORDER) <= DISPOSITIONS



class CampaignSpec(NamedTuple):
    """A simulated campaign's fixed parameters."""

    id: str
    mode: str  # dial mode: predictive, progressive or preview
    agent_share: float  # share of the center's agents
    kind: str  # key of DISPOSITION_MIX
    p_human: float  # P(a live person answers) at hour factor 1
    order_median: float  # median order value of a sale
    lead_scores: bool  # every wrap-up carries a lead score (else 30 % of them)


CAMPAIGNS = [
    CampaignSpec("solar-q4", "predictive", 0.30, "sales", 0.24, 850.0, False),
    CampaignSpec("insure-renew", "predictive", 0.25, "appointment", 0.27, 1200.0, True),
    CampaignSpec("fiber-upgrade", "predictive", 0.20, "sales", 0.22, 540.0, False),
    CampaignSpec("b2b-leads", "progressive", 0.15, "leads", 0.30, 0.0, True),
    CampaignSpec("vip-winback", "preview", 0.10, "winback", 0.35, 300.0, False),
]
# Per campaign three lists: (weight, answer-quality factor, share of invalid numbers).
LISTS = [(0.45, 1.1, 0.02), (0.35, 1.0, 0.04), (0.20, 0.7, 0.12)]
# Per campaign four outbound numbers: reputation factor on the human-answer rate.
DID_REPUTATION = [1.0, 1.0, 0.95, 0.85]
AREA_CODES = ["212", "305", "312", "404", "415", "512", "617", "702", "713", "801", "904", "971"]

P_MACHINE, P_FAX, P_FAX_B2B = 0.14, 0.004, 0.02
P_BUSY, P_REJECTED, P_CONGESTION, P_ERROR, P_CANCELED = 0.05, 0.04, 0.004, 0.002, 0.002
# Answering-machine detection verdicts: (human, machine, unknown) for a live person, for a machine.
AMD_HUMAN = (0.95, 0.03, 0.02)
AMD_MACHINE = (0.10, 0.85, 0.05)
DIALER_MAX_WAIT_MS = 3000       # a live person unbridged this long after answer is dropped
COMPLIANCE_CONNECT_MS = 2000    # the regulators' rule: bridged later than this counts as abandoned
PATIENCE = (3500, 0.5)          # customer hangs up on silence: lognormal (median ms, sigma)

TICK_MS = 250                   # predictive dialer pacing step
PACE_EVERY = 40                 # ticks between pacing-controller updates (10 s)
LOOKAHEAD_S = 10                # agents freeing within this many seconds count as supply
PACE_GAIN = 0.05                # controller: pace *= exp(gain * relative abandon-rate error) when slowing
MIN_P_ROUTE = 0.08              # caps the lines per agent (1/0.08) whatever the dialer estimates
P_ROUTE_LEARNING = 0.01         # per resolved line: how fast that estimate follows the outcomes
PACE_DECAY = 0.99               # per update: abandon statistics remember ~15 minutes
PACE_START, PACE_MIN, PACE_MAX = 0.5, 0.15, 3.0  # a soft start, and the factor's bounds
PACE_GAIN_UP = 0.01             # ...but speed up slowly: dialers back off fast and ramp up slowly
PACE_PRIOR_ANSWERS = 10         # the estimate starts as this many live answers at the target
                                # rate, so a small campaign's first abandons count at once

END_GRACE_MS = 5 * MIN          # every event of a run has ts <= end + this

SURVEY_P, QA_P, QUALITY_P = 0.15, 0.05, 0.30
COMPLAINT_CATEGORIES = ["too_many_calls", "rude_agent", "misleading_offer", "abandoned_call",
                        "billing"]

def _cumulative(weights: Iterable[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [x / total for x in out]


OUT, IDLE, BUSY, PAUSED = 0, 1, 2, 3



class Action(IntEnum):
    """What a timed entry of the simulation's heap does when its time comes."""

    TICK = 0         # a predictive campaign's pacing step (subject: the campaign)
    RESOLVE = 1      # a dialed line is done without an agent (subject: the call)
    ROUTE = 2        # a probable live person is on the line (subject: the call)
    TIMEOUT = 3      # a waiting customer's patience or the dialer's wait ends (subject: the call)
    WRAP_END = 4     # an agent finishes wrap-up (subject: the agent)
    LOGIN = 5        # (subject: the agent)
    LOGOUT = 6       # (subject: the agent)
    PAUSE = 7        # (subject: the agent; detail: (reason, length ms))
    PAUSE_END = 8    # (subject: the agent; detail: the agent's token when the pause began)
    AGENT_DIAL = 9   # a progressive/preview agent dials (subject: the agent; detail: its token)
    SCENARIO = 10    # (subject: the scenario's name)
    OUTAGE_END = 11


class Timed(NamedTuple):
    """A heap entry: ordered by time, then by insertion (`seq` is unique, so the subject and detail
    are never compared)."""

    at: int
    seq: int
    action: Action
    subject: Any
    detail: Any


# csat 1..5 distributions (cumulative) after a success, a refusal, anything else.
CSAT_HAPPY = _cumulative((0.02, 0.03, 0.10, 0.35, 0.50))
CSAT_UNHAPPY = _cumulative((0.25, 0.20, 0.25, 0.20, 0.10))
CSAT_NEUTRAL = _cumulative((0.06, 0.09, 0.22, 0.36, 0.27))


class _List:
    __slots__ = ("id", "weight", "quality", "invalid", "regions", "leads", "dialed", "earlier")

    def __init__(self, id: str, weight: float, quality: float, invalid: float, regions: list[str]):
        self.id, self.weight, self.quality, self.invalid = id, weight, quality, invalid
        self.regions = regions
        self.leads = 0
        self.dialed: list[str] = []   # the new leads this run dialed from the list
        self.earlier: list[str] = []  # the list's leads of SimConfig.earlier_leads


class _Did:
    __slots__ = ("number", "reputation")

    def __init__(self, number: str, reputation: float):
        self.number, self.reputation = number, reputation


class _Campaign:
    __slots__ = ("id", "mode", "predictive", "kind", "p_human", "order_median", "scores",
                 "lists", "list_cum", "dids", "dispo_cum", "agents", "idle", "idle_n", "waiting",
                 "n_waiting", "ringing", "free_at", "p_route", "pace", "ab_num", "ab_den",
                 "target", "carry", "ticks", "soon")

    def __init__(self, spec: CampaignSpec, index: int, cfg: SimConfig):
        self.id, self.mode, self.kind = spec.id, spec.mode, spec.kind
        self.predictive = spec.mode == "predictive"
        self.p_human, self.order_median, self.scores = spec.p_human, spec.order_median, spec.lead_scores
        self.lists = [_List(f"{spec.id}-L{i + 1}", weight, quality, invalid,
                            [AREA_CODES[(3 * index + i + k) % len(AREA_CODES)] for k in range(4)])
                      for i, (weight, quality, invalid) in enumerate(LISTS)]
        self.list_cum = _cumulative([lst.weight for lst in self.lists])
        self.dids = [_Did(f"+1-555-01{index * 4 + i:02d}", rep) for i, rep in enumerate(DID_REPUTATION)]
        self.dispo_cum = _cumulative(DISPOSITION_MIX[spec.kind])
        self.agents: list[_Agent] = []
        self.idle: deque[tuple[_Agent, int]] = deque()  # (agent, token): lazily invalidated
        self.idle_n = 0
        self.waiting: deque[_Call] = deque()  # calls waiting for an agent (lazily invalidated)
        self.n_waiting = 0
        self.ringing = 0               # lines dialed, not yet resolved or routed
        self.free_at: dict[int, int] = {}  # second -> agents finishing wrap-up then
        self.p_route = 0.2             # the dialer's estimate of P(an attempt needs an agent)
        self.pace = PACE_START
        self.ab_num = 0.0
        self.ab_den = 0.0
        self.target = cfg.abandon_target
        self.carry = 0.0
        self.ticks = 0
        self.soon = 0.0


class _Agent:
    __slots__ = ("id", "team", "camp", "state", "token", "seq", "pending_pause", "pending_logout",
                 "dropped", "free_sec")

    def __init__(self, id: str, team: str, camp: _Campaign):
        self.id, self.team, self.camp = id, team, camp
        self.state = OUT
        self.token = 0
        self.seq = 0
        self.pending_pause: tuple[str, int] | None = None
        self.pending_logout = False
        self.dropped = False
        self.free_sec: int | None = None  # the second its wrap-up ends, while the dialer counts on it


class _Call:
    __slots__ = ("id", "key", "camp", "n", "t_ans", "truth", "agent", "waiting", "lead", "ab_reason",
                 "variant")

    def __init__(self, id: str, camp: _Campaign, lead: str, agent: _Agent | None):
        self.id, self.camp, self.lead, self.agent = id, camp, lead, agent
        self.variant: str | None = None
        self.key = id.encode()
        self.n = 0
        self.t_ans = 0
        self.truth = ""
        self.waiting = False
        self.ab_reason = ""


class Model:
    """Runs the call center; `emit(ts, key, event_dict)` receives every valid event."""

    def __init__(self, cfg: SimConfig, emit: Callable[[int, bytes, dict], None],
                 fmt: Callable[[int], Any]):
        self.cfg = cfg
        self.emit = emit
        self.fmt = fmt
        self.rng = Random(f"model:{cfg.seed}")
        self.run_id = f"{Random(f'run:{cfg.seed}:{cfg.start_ms}').getrandbits(32):08x}"
        self.start, self.end = cfg.start_ms, cfg.end_ms
        self.horizon = self.end + END_GRACE_MS
        self.offset_ms = cfg.utc_offset_min * MIN
        self.heap: list[Timed] = []
        self.seq = 0
        self.ncalls = 0
        self.now = self.start
        self.outage_until = -1
        self.experiment: str | None = None  # ab_test / aa_test once the scenario has started
        # Its own generator: the variant draws leave every other scenario's run unchanged.
        self.variant_r = Random(f"variant:{cfg.seed}")
        self.lead_r = Random(f"lead:{cfg.seed}")  # likewise for the repeat-lead draws
        self.campaigns = [_Campaign(spec, i, cfg) for i, spec in enumerate(CAMPAIGNS)]
        by_id = {lst.id: lst for camp in self.campaigns for lst in camp.lists}
        for lead in cfg.earlier_leads:
            lst = by_id.get(lead.rsplit("-", 2)[0])
            if lst is not None:
                lst.earlier.append(lead)
        self.customers: dict[str, None] = {}  # the leads with a sale, in order (a set)
        self.agents: list[_Agent] = []
        self._staff()

    # --------------------------------------------------------------------------- set-up

    def _at(self, t: int, action: Action, subject: Any = None, detail: Any = None) -> None:
        self.seq += 1
        heappush(self.heap, Timed(t, self.seq, action, subject, detail))

    def _staff(self) -> None:
        cfg, rng = self.cfg, self.rng
        total = cfg.agents
        # Agents per campaign by share (largest remainder), every campaign staffed when total >= 5.
        shares = [spec.agent_share for spec in CAMPAIGNS]
        counts = [int(total * s) for s in shares]
        for i in sorted(range(len(shares)), key=lambda i: -(total * shares[i] - counts[i]))[:total - sum(counts)]:
            counts[i] += 1
        width = max(4, len(str(total)))
        team_no = 0
        agent_no = 0
        for camp, count in zip(self.campaigns, counts, strict=True):
            for seat in range(count):
                if seat % cfg.teams_of == 0:
                    team_no += 1
                agent_no += 1
                agent = _Agent(f"agent-{agent_no:0{width}d}", f"team-{team_no:02d}", camp)
                camp.agents.append(agent)
                self.agents.append(agent)
            if camp.predictive and count:
                self._at(self.start, Action.TICK, camp)
        dur = self.end - self.start
        edge = int(min(10 * MIN, 0.05 * dur))
        for agent in self.agents:
            login = self.start + int(rng.random() * edge)
            logout = self.end - int(rng.random() * edge)
            if dur >= 4 * HOUR and rng.random() < 0.15:  # part-timer: one half of the run
                half = self.start + dur // 2 + int((rng.random() - 0.5) * 2 * edge)
                if rng.random() < 0.5:
                    logout = half
                else:
                    login = half
            self._at(login, Action.LOGIN, agent)
            self._at(logout, Action.LOGOUT, agent)
            self._plan_pauses(agent, login, logout)
        if cfg.scenario:
            self._at(self.start + int(cfg.scenario_at * dur), Action.SCENARIO, cfg.scenario)

    def _plan_pauses(self, agent: _Agent, login: int, logout: int) -> None:
        rng = self.rng
        shift = logout - login
        pauses: list[tuple[int, str, int]] = []
        if shift >= 5 * HOUR:
            lunch = login + shift // 2 + int((rng.random() - 0.5) * 90 * MIN)
            pauses.append((lunch, "lunch", int((30 + 30 * rng.random()) * MIN)))
        # Breaks every ~2 h with a random phase (as if the shift began before the run).
        t = login + int(rng.random() * 2 * HOUR)
        while t < logout - 20 * MIN:
            if all(abs(t - p[0]) > 45 * MIN for p in pauses):
                pauses.append((t, "break", int((10 + 8 * rng.random()) * MIN)))
            t += int((1.75 + 0.5 * rng.random()) * HOUR)
        draw = rng.random()
        if draw < 0.08 * min(1.0, shift / (8 * HOUR)) * 2:
            reason, length = ("training", 30 + 30 * rng.random()) if draw < 0.08 else ("meeting", 15 + 15 * rng.random())
            at = login + int(rng.random() * max(0, shift - 70 * MIN))
            if all(abs(at - p[0]) > 70 * MIN for p in pauses):
                pauses.append((at, reason, int(length * MIN)))
        for at, reason, length in pauses:
            if login < at < logout - 15 * MIN:
                self._at(at, Action.PAUSE, agent, (reason, length))

    # --------------------------------------------------------------------------- events

    def _call_event(self, call: _Call, ts: int, typ: str, fields: dict) -> None:
        call.n += 1
        event = {"event_id": f"{call.id}-{call.n}", "type": typ, "ts": self.fmt(ts),
             "campaign_id": call.camp.id, "call_id": call.id}
        event.update(fields)
        self.emit(ts, call.key, event)

    def _agent_event(self, agent: _Agent, ts: int, state: str, reason: str | None = None) -> None:
        agent.seq += 1
        event = {"event_id": f"{agent.id}-{self.run_id}-{agent.seq}", "type": "agent.state",
             "ts": self.fmt(ts), "agent_id": agent.id, "state": state, "team_id": agent.team,
             "campaign_id": agent.camp.id}
        if reason:
            event["reason"] = reason
        self.emit(ts, agent.id.encode(), event)

    # --------------------------------------------------------------------------- the loop

    def steps(self) -> Iterator[int]:
        """Run the simulation; yields the clock before each action (non-decreasing)."""
        heap = self.heap
        while heap:
            t, _, action, subject, detail = heappop(heap)
            yield t
            self.now = t
            if action == Action.RESOLVE:
                self._resolve(subject, t)
            elif action == Action.TICK:
                self._tick(subject, t)
            elif action == Action.ROUTE:
                self._route(subject, t)
            elif action == Action.WRAP_END:
                self._uncount(subject)
                self._free(subject, t, True)
            elif action == Action.TIMEOUT:
                self._timeout(subject, t)
            elif action == Action.AGENT_DIAL:
                if subject.state == IDLE and subject.token == detail and t < self.end:
                    subject.state = BUSY
                    subject.token += 1
                    self._dial(subject.camp, t, subject)
            elif action == Action.LOGIN:
                if subject.state == OUT and not subject.dropped:
                    subject.pending_logout = False
                    subject.pending_pause = None
                    subject.state = PAUSED  # transient: _free emits "available"
                    self._free(subject, t, True)
            elif action == Action.LOGOUT:
                self._logout(subject, t)
            elif action == Action.PAUSE:
                self._pause(subject, t, detail)
            elif action == Action.PAUSE_END:
                if subject.state == PAUSED and subject.token == detail:
                    self._free(subject, t, True)
            elif action == Action.SCENARIO:
                self._scenario(subject, t)
            elif action == Action.OUTAGE_END:
                self.outage_until = -1

    # --------------------------------------------------------------------------- agents

    def _free(self, agent: _Agent, t: int, announce: bool) -> None:
        """The agent has nothing to do at t: log out, pause, or become available for calls."""
        if agent.pending_logout:
            agent.pending_logout = False
            agent.state = OUT
            agent.token += 1
            self._agent_event(agent, t, "logged_out")
            return
        if agent.pending_pause:
            reason, length = agent.pending_pause
            agent.pending_pause = None
            self._start_pause(agent, t, reason, length)
            return
        if announce:
            self._agent_event(agent, t, "available")
        agent.state = IDLE
        agent.token += 1
        camp = agent.camp
        if camp.predictive:
            while camp.waiting:
                call = camp.waiting.popleft()
                if call.waiting:
                    call.waiting = False
                    camp.n_waiting -= 1
                    self._connect(call, agent, t + 150 + int(self.rng.random() * 250))
                    return
            camp.idle.append((agent, agent.token))
            camp.idle_n += 1
        else:
            think = (1000 + 3000 * self.rng.random()) if camp.mode == "progressive" else (
                8000 + 32000 * self.rng.random())
            self._at(t + int(think), Action.AGENT_DIAL, agent, agent.token)

    def _uncount(self, agent: _Agent) -> None:
        """The dialer stops expecting this busy agent back (wrap-up over, or a pause/logout next)."""
        if agent.free_sec is not None:
            free_at = agent.camp.free_at
            if agent.free_sec in free_at:
                free_at[agent.free_sec] -= 1
            agent.free_sec = None

    def _take_idle(self, camp: _Campaign) -> _Agent | None:
        idle = camp.idle
        while idle:
            agent, token = idle.popleft()
            if agent.token == token and agent.state == IDLE:
                camp.idle_n -= 1
                return agent
        return None

    def _leave_idle(self, agent: _Agent) -> None:
        if agent.state == IDLE and agent.camp.predictive:
            agent.camp.idle_n -= 1
        agent.token += 1

    def _start_pause(self, agent: _Agent, t: int, reason: str, length: int) -> None:
        agent.state = PAUSED
        agent.token += 1
        self._agent_event(agent, t, "paused", reason)
        self._at(t + length, Action.PAUSE_END, agent, agent.token)

    def _pause(self, agent: _Agent, t: int, pause: tuple[str, int]) -> None:
        if agent.state == IDLE:
            self._leave_idle(agent)
            self._start_pause(agent, t, *pause)
        elif agent.state == BUSY and agent.pending_pause is None:
            agent.pending_pause = pause
            self._uncount(agent)

    def _logout(self, agent: _Agent, t: int) -> None:
        if agent.state in (IDLE, PAUSED):
            self._leave_idle(agent)
            agent.state = OUT
            self._agent_event(agent, t, "logged_out")
        elif agent.state == BUSY:
            agent.pending_logout = True
            self._uncount(agent)

    # --------------------------------------------------------------------------- dialing

    def _tick(self, camp: _Campaign, t: int) -> None:
        rng = self.rng
        camp.ticks += 1
        if camp.ticks % PACE_EVERY == 0:
            rate = (camp.ab_num + PACE_PRIOR_ANSWERS * camp.target) / (camp.ab_den + PACE_PRIOR_ANSWERS)
            error = max(-2.0, min(2.0, (camp.target - rate) / camp.target))
            camp.pace *= math.exp((PACE_GAIN_UP if error > 0 else PACE_GAIN) * error)
            camp.pace = max(PACE_MIN, min(PACE_MAX, camp.pace))
            camp.ab_num *= PACE_DECAY
            camp.ab_den *= PACE_DECAY
        if t % 1000 < TICK_MS:  # once a second: agents expected back within the look-ahead
            sec = t // 1000
            free_at = camp.free_at
            free_at.pop(sec - 1, None)
            camp.soon = 0.8 * sum([free_at.get(second, 0) for second in range(sec, sec + LOOKAHEAD_S)])
        supply = camp.idle_n - camp.n_waiting + camp.soon
        if supply > 0:
            want = camp.pace * supply / max(camp.p_route, MIN_P_ROUTE) - camp.ringing + camp.carry
            lines = int(want)
            camp.carry = want - lines if lines >= 0 else 0.0
            for _ in range(lines):
                self._dial(camp, t + int(rng.random() * TICK_MS), None)
        else:
            camp.carry = 0.0
        if t + TICK_MS < self.end:
            self._at(t + TICK_MS, Action.TICK, camp)

    def _dial(self, camp: _Campaign, t: int, agent: _Agent | None) -> None:
        rng = self.rng
        self.ncalls += 1
        lst = camp.lists[bisect.bisect(camp.list_cum, rng.random())]
        did = camp.dids[int(rng.random() * 4)]
        call = _Call(f"c-{self.run_id}-{self.ncalls}", camp, self._lead(lst), agent)
        fields = {"list_id": lst.id, "lead_id": call.lead, "caller_id": did.number,
                  "dest_region": lst.regions[int(rng.random() * 4)], "mode": camp.mode}
        if agent is not None:
            fields["agent_id"] = agent.id
        if self.experiment is not None:
            call.variant = EXPERIMENT_VARIANTS[self.variant_r.random() < 0.5]
            fields["variant"] = call.variant
        self._call_event(call, t, "call.dialed", fields)
        if camp.predictive:
            camp.ringing += 1

        # Outcome of the attempt.
        draw = rng.random()
        if t < self.outage_until and draw < 0.85:
            reason = "congestion" if rng.random() < 0.7 else "error"
            self._unanswered(call, t, reason, 200 + int(1300 * rng.random()))
            return
        if draw < lst.invalid:
            self._unanswered(call, t, "invalid_number", 500 + int(2500 * rng.random()))
            return
        draw = rng.random()
        hour = ((t + self.offset_ms) // HOUR) % 24
        p_h_normal = camp.p_human * HOUR_FACTOR[hour] * lst.quality
        p_h = p_h_normal * did.reputation
        if draw < p_h:
            ring = min(40000, max(2000, int(rng.lognormvariate(9.1, 0.45))))  # median ~9 s
            self._answered(call, t + ring, "human", ring)
            return
        draw -= p_h
        if draw < P_MACHINE:
            ring = min(35000, max(6000, int(rng.lognormvariate(9.8, 0.3))))  # ~18 s
            self._answered(call, t + ring, "machine", ring)
            return
        draw -= P_MACHINE
        p_fax = P_FAX_B2B if camp.kind == "leads" else P_FAX
        if draw < p_fax:
            self._answered(call, t + 3000 + int(4000 * rng.random()), "fax", None)
            return
        draw -= p_fax
        if draw < P_BUSY:
            self._unanswered(call, t, "busy", 1000 + int(3000 * rng.random()))
        # A flagged number's lost answers mostly turn into rejections.
        elif (draw := draw - P_BUSY) < P_REJECTED + 0.6 * (p_h_normal - p_h):
            self._unanswered(call, t, "rejected", 3000 + int(9000 * rng.random()))
        elif (draw := draw - P_REJECTED) < P_CONGESTION:
            self._unanswered(call, t, "congestion", 200 + int(1300 * rng.random()))
        elif (draw := draw - P_CONGESTION) < P_ERROR:
            self._unanswered(call, t, "error", 100 + int(700 * rng.random()))
        elif draw - P_ERROR < P_CANCELED:
            self._unanswered(call, t, "canceled", 2000 + int(13000 * rng.random()))
        else:
            self._unanswered(call, t, "no_answer", 24000 + int(8000 * rng.random()))

    def _lead(self, lst: _List) -> str:
        """A new lead of the list (unique across runs: the run id is in it), or with
        `repeat_lead_rate` an earlier one of the same list, uniformly: one of
        `SimConfig.earlier_leads` if the list has any, else one dialed before in this run."""
        r = self.lead_r
        if self.cfg.repeat_lead_rate and r.random() < self.cfg.repeat_lead_rate:
            pool = lst.earlier or lst.dialed
            if pool:
                return pool[int(r.random() * len(pool))]
        lst.leads += 1
        lead = f"{lst.id}-{self.run_id}-{lst.leads}"
        lst.dialed.append(lead)
        return lead

    def _unanswered(self, call: _Call, t: int, reason: str, ring: int) -> None:
        t_end = t + ring
        fields: dict[str, Any] = {"reason": reason}
        if reason != "error" or self.rng.random() < 0.7:
            fields["ring_ms"] = ring
        self._call_event(call, t_end, "call.unanswered", fields)
        if reason in ("no_answer", "busy") and self.rng.random() < 0.008:
            self._callback(call, t_end)
        self._at(t_end, Action.RESOLVE, call)

    def _answered(self, call: _Call, t_answer: int, truth: str, ring: int | None) -> None:
        rng = self.rng
        call.truth = truth
        call.t_ans = t_answer
        draw = rng.random()
        if truth == "human":
            verdict = "human" if draw < AMD_HUMAN[0] else "machine" if draw < AMD_HUMAN[0] + AMD_HUMAN[1] else "unknown"
        elif truth == "machine":
            verdict = "human" if draw < AMD_MACHINE[0] else "machine" if draw < AMD_MACHINE[0] + AMD_MACHINE[1] else "unknown"
        else:
            verdict = "fax" if draw < 0.95 else "unknown"
        fields: dict[str, Any] = {"answered_by": verdict}
        if ring is not None:
            fields["ring_ms"] = ring
        self._call_event(call, t_answer, "call.answered", fields)
        if verdict == "human":  # the dialer paces on the regulator's ratio: abandoned / live answers
            call.camp.ab_den += 1
        amd = 400 + int(1000 * rng.random())
        if verdict in ("human", "unknown"):
            self._at(t_answer + amd, Action.ROUTE, call)
        else:  # the dialer hangs up on machines and faxes (and on people taken for machines)
            self._call_event(call, t_answer + amd, "call.ended", {"talk_ms": 0, "hangup_by": "system"})
            if truth == "machine" and rng.random() < 0.015:  # the voicemail left was heard
                self._callback(call, t_answer)
            self._at(t_answer + amd, Action.RESOLVE, call)

    def _resolve(self, call: _Call, t: int) -> None:
        camp = call.camp
        if camp.predictive:
            camp.ringing -= 1
            camp.p_route += P_ROUTE_LEARNING * (0.0 - camp.p_route)
        else:
            assert call.agent is not None  # progressive and preview lines are dialed by their agent
            self._free(call.agent, t, False)

    def _route(self, call: _Call, t: int) -> None:
        """A (probable) live person is on the line: bridge an agent or wait for one."""
        camp = call.camp
        rng = self.rng
        if not camp.predictive:
            assert call.agent is not None  # progressive and preview lines are dialed by their agent
            self._connect(call, call.agent, t + 100 + int(300 * rng.random()))
            return
        camp.ringing -= 1
        camp.p_route += P_ROUTE_LEARNING * (1.0 - camp.p_route)
        agent = self._take_idle(camp)
        if agent is not None:
            self._connect(call, agent, t + 150 + int(250 * rng.random()))
            return
        call.waiting = True
        camp.waiting.append(call)
        camp.n_waiting += 1
        patience = int(rng.lognormvariate(math.log(PATIENCE[0]), PATIENCE[1]))
        if patience < DIALER_MAX_WAIT_MS:
            call.ab_reason = "customer_hangup"
            limit = patience
        else:
            call.ab_reason = "no_agent"
            limit = DIALER_MAX_WAIT_MS
        self._at(max(t + 100, call.t_ans + limit), Action.TIMEOUT, call)

    def _timeout(self, call: _Call, t: int) -> None:
        if not call.waiting:
            return
        call.waiting = False
        camp = call.camp
        camp.n_waiting -= 1
        camp.ab_num += 1
        self._call_event(call, t, "call.abandoned", {"wait_ms": t - call.t_ans, "reason": call.ab_reason})
        hangup = "customer" if call.ab_reason == "customer_hangup" else "system"
        self._call_event(call, t, "call.ended", {"talk_ms": 0, "hangup_by": hangup})
        rng = self.rng
        if call.truth == "human":
            if rng.random() < 0.05:
                self._callback(call, t)
            if rng.random() < 0.02:
                self._followup(call, t + int((5 + 115 * rng.random()) * MIN), "call.complaint",
                               {"category": "abandoned_call"})

    # --------------------------------------------------------------------------- a handled call

    def _connect(self, call: _Call, agent: _Agent, t_connect: int) -> None:
        rng = self.rng
        camp = call.camp
        agent.state = BUSY
        agent.token += 1
        call.agent = agent
        self._agent_event(agent, t_connect, "on_call")
        self._call_event(call, t_connect, "call.connected",
                         {"agent_id": agent.id, "team_id": agent.team, "wait_ms": t_connect - call.t_ans})
        if camp.predictive and t_connect - call.t_ans > COMPLIANCE_CONNECT_MS:
            camp.ab_num += 1  # the dialer paces on the regulators' count, which includes late bridges
        truth = call.truth
        if truth == "human":
            dispo = _DISPO_ORDER[bisect.bisect(camp.dispo_cum, rng.random())]
            if (self.experiment == "ab_test" and call.variant == EXPERIMENT_VARIANTS[1]
                    and camp.order_median > 0 and dispo not in ("sale", "appointment")
                    and self.variant_r.random() < AB_TEST_LIFT):
                dispo = "sale"  # the better script
        else:
            dispo = "answering_machine" if truth == "machine" else "other"
        med, sigma = TALK[dispo]
        talk = int(rng.lognormvariate(math.log(med * 1000), sigma))
        if truth == "fax":
            talk = 2000 + int(3000 * rng.random())
        hold = 0
        if truth == "human" and rng.random() < (0.18 if dispo in LONG_CALLS else 0.05):
            hold = int(rng.lognormvariate(math.log(35000), 0.6))
        if dispo in ("sale", "appointment"):
            wrap = int(rng.lognormvariate(math.log(55000), 0.4))
        elif truth == "human":
            wrap = int(rng.lognormvariate(math.log(25000), 0.45))
        else:
            wrap = 3000 + int(7000 * rng.random())
        # Calls still in progress at the end of the run are cut short (every ts <= end + grace).
        over = t_connect + talk + hold + wrap - self.horizon
        if over > 0:
            talk = max(1000, talk - over)
            over = t_connect + talk + hold + wrap - self.horizon
            if over > 0:
                hold, wrap = 0, max(0, wrap - over)
                talk = min(talk, self.horizon - t_connect - wrap)
        draw = rng.random()
        if truth != "human":
            hangup = "agent"
        elif draw < 0.015 or (t_connect < self.outage_until and draw < 0.08):
            hangup = "system"  # the line dropped
        else:
            hangup = "customer" if draw < 0.57 else "agent"
        t_end = t_connect + talk + hold
        self._call_event(call, t_end, "call.ended",
                         {"agent_id": agent.id, "talk_ms": talk, "hold_ms": hold, "hangup_by": hangup})
        self._agent_event(agent, t_end, "wrap_up")
        t_wrapped = t_end + wrap
        fields: dict[str, Any] = {"agent_id": agent.id, "wrapup_ms": wrap, "disposition": dispo}
        if truth == "human":
            if dispo == "sale":
                fields["order_value"] = round(rng.lognormvariate(math.log(camp.order_median), 0.45), 2)
            if camp.scores or rng.random() < 0.3:
                fields["lead_score"] = self._lead_score(dispo)
            fields["intent"] = self._intent(dispo)
            fields["resolved"] = dispo in ALWAYS_RESOLVED and rng.random() < 0.92
        self._call_event(call, t_wrapped, "call.wrapup", fields)
        if dispo == "sale":
            self.customers[call.lead] = None
        self._at(t_wrapped, Action.WRAP_END, agent)
        if camp.predictive and agent.pending_pause is None and not agent.pending_logout:
            sec = agent.free_sec = t_wrapped // 1000
            camp.free_at[sec] = camp.free_at.get(sec, 0) + 1

        # Follow-ups: quality report, survey, complaint, QA review.
        if hangup == "system" or rng.random() < QUALITY_P:
            mean = 3.4 if t_connect < self.outage_until else 4.2
            quality: dict[str, Any] = {"dropped": hangup == "system"}
            if rng.random() < 0.95:
                quality["mos"] = round(min(5.0, max(1.0, rng.gauss(mean, 0.25))), 2)
            self._followup(call, t_end + int(2000 * rng.random()), "call.quality", quality)
        if truth != "human":
            return
        if dispo not in ("dnc", "wrong_party") and rng.random() < SURVEY_P:
            cum = CSAT_HAPPY if dispo in ("sale", "appointment") else (
                CSAT_UNHAPPY if dispo == "refused" else CSAT_NEUTRAL)
            survey: dict[str, Any] = {"csat": 1 + bisect.bisect(cum, rng.random())}
            if rng.random() < 0.8:
                survey["agent_id"] = agent.id
            self._followup(call, t_wrapped + int((1 + 14 * rng.random()) * MIN), "call.survey", survey)
        if rng.random() < (0.02 if dispo in ("refused", "dnc") else 0.003):
            complaint: dict[str, Any] = {"category": COMPLAINT_CATEGORIES[int(rng.random() * 5)]}
            if rng.random() < 0.7:
                complaint["agent_id"] = agent.id
            self._followup(call, t_end + int((5 + 115 * rng.random()) * MIN), "call.complaint", complaint)
        if rng.random() < QA_P:
            score = int(min(100, max(0, round(rng.gauss(82, 9)))))
            compliant = rng.random() < (0.97 if score >= 70 else 0.7)
            self._followup(call, t_wrapped + int((10 + 170 * rng.random()) * MIN), "call.qa",
                           {"agent_id": agent.id, "score": score, "compliant": compliant})

    def _followup(self, call: _Call, ts: int, typ: str, fields: dict) -> None:
        if ts <= self.horizon:
            self._call_event(call, ts, typ, fields)

    def _callback(self, call: _Call, t: int) -> None:
        self._followup(call, t + int((5 + 115 * self.rng.random()) * MIN), "call.callback",
                       {"lead_id": call.lead})

    def _lead_score(self, dispo: str) -> int:
        rng = self.rng
        if dispo in ("sale", "appointment", "qualified_lead"):
            return 65 + int(36 * rng.random())
        if dispo == "callback_requested":
            return 35 + int(51 * rng.random())
        if dispo == "no_decision":
            return 20 + int(56 * rng.random())
        return int(46 * rng.random())

    def _intent(self, dispo: str) -> str:
        draw = self.rng.random()
        if dispo in ("sale", "appointment", "qualified_lead"):
            return "high" if draw < 0.85 else "medium"
        if dispo in ("callback_requested", "no_decision"):
            return "medium" if draw < 0.7 else "high" if draw < 0.8 else "low"
        if dispo == "not_interested":
            return "low" if draw < 0.7 else "none"
        if dispo == "other":
            return "low"
        return "none"

    # --------------------------------------------------------------------------- scenarios

    def _scenario(self, name: str, t: int) -> None:
        rng = self.rng
        if name == "spam_flag":
            self.campaigns[0].dids[0].reputation *= 0.1
        elif name == "staffing_drop":
            for agent in rng.sample(self.agents, len(self.agents) // 2):
                agent.dropped = True
                self._logout(agent, t)
        elif name == "carrier_outage":
            length = int(min(45 * MIN, max(10 * MIN, 0.08 * (self.end - self.start))))
            self.outage_until = t + length
            self._at(t + length, Action.OUTAGE_END)
        elif name == "abandon_spike":
            for camp in self.campaigns:
                camp.target = 0.08
        elif name in ("ab_test", "aa_test"):
            self.experiment = name
