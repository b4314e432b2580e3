"""Agents: one row per agent and team trends."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dash_m

from ..panels import AMBER, BLUE, GREEN, GREY, RED, Board, Column, color_cell, label_values_var, table, timeseries


def agents() -> Board:
    b = Board(
        "callkpi-agents",
        "Agents",
        "One row per agent (state, time in state, today's handled calls, AHT, wrap-up, calls per agent-hour, "
        "occupancy) and team trends.",
        ["agents"],
        time_from="now-8h",
        refresh="15s",
    )
    b.variable(label_values_var("team", "callcenter_agent", "team", "Team"))
    sel = 'team=~"$team"'

    def agent(kpi: str) -> str:
        # every column grouped the same way, so the table's merge joins them on (agent, team)
        return f'max by (agent, team) (callcenter_agent{{{sel}, kpi="{kpi}"}})'

    # callcenter_agent{kpi="state"} is the state's code (a value, so that a state change does not
    # start new series): map it back to the state's name and colour.
    state_names = dash_m.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
        str(code): {"text": state, "color": color, "index": code}
        for code, (state, color) in enumerate([("logged_out", GREY), ("available", GREEN), ("on_call", BLUE),
                                               ("wrap_up", AMBER), ("paused", RED)])
    }}])
    b.panel(table(
        "Agents (today)",
        {"agent": "Agent", "team": "Team"},
        [
            Column(agent("state"), "State", overrides=(state_names, color_cell())),
            Column(agent("state_seconds"), "Time in state", "s"),
            Column(agent("handled"), "Handled", "none"),
            Column(agent("aht_seconds"), "AHT", "s"),
            Column(agent("avg_wrapup_seconds"), "Avg wrap-up", "s"),
            Column(agent("calls_per_agent_hour"), "Calls / agent-hour", "none"),
            Column(agent("occupancy"), "Occupancy", "percentunit"),
        ],
        h=14, sort_by="Time in state",
        description="State and seconds in it are live; the other columns count since local midnight "
                    "(the exporter reads them from hour buckets).",
    ))
    team_sel = 'scope_kind="team", scope_id=~"$team"'
    b.panel(timeseries("Agents by state", [
        (f'sum by (state) (callcenter_agents{{{team_sel}, state!="logged_out"}})', "{{state}}"),
    ], "none", stacked=True, w=12))
    b.panel(timeseries("Paused agents by reason", [
        (f'sum by (reason) (callcenter_agents{{{team_sel}, state="paused"}})', "{{reason}}"),
    ], "none", stacked=True, w=12))
    b.panel(timeseries("Team occupancy (today)", [
        (f'max by (scope_id) (callcenter_window_occupancy_ratio{{{team_sel}, window="today"}})', "{{scope_id}}"),
    ], "percentunit", w=8))
    b.panel(timeseries("Team AHT (today)", [
        (f'max by (scope_id) (callcenter_window_aht_seconds{{{team_sel}, window="today"}})', "{{scope_id}}"),
    ], "s", w=8))
    b.panel(timeseries("Team calls per agent-hour (today)", [
        (f'max by (scope_id) (callcenter_window_calls_per_agent_hour{{{team_sel}, window="today"}})', "{{scope_id}}"),
    ], "none", w=8))
    return b
