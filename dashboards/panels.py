"""Shared Grafana panel builders (grafana-foundation-sdk) and the Board every dashboard is built on."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NamedTuple

from grafana_foundation_sdk.builders import bargauge as bargauge_b
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import gauge as gauge_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

from .common import DATASOURCE_UID

DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

GREEN, AMBER, RED, BLUE, GREY = "green", "orange", "red", "blue", "text"


def thresholds(base: str, *steps: tuple[float, str]) -> dash_b.ThresholdsConfig:
    """thresholds(RED, (0.1, AMBER), (0.2, GREEN)): base colour then (value, colour) steps."""
    return (
        dash_b.ThresholdsConfig()
        .mode(dash_m.ThresholdsMode.ABSOLUTE)
        .steps([dash_m.Threshold(value=None, color=base)] + [dash_m.Threshold(value=v, color=c) for v, c in steps])
    )


def query(expr: str, legend: str | None = None, ref: str = "A", instant: bool = False, table: bool = False,
          interval: str | None = None) -> prom_b.Dataquery:
    q = prom_b.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    q = q.instant() if instant or table else q.range()
    if legend is not None:
        q = q.legend_format(legend)
    if table:
        q = q.format(prom_m.PromQueryFormat.TABLE)
    if interval:
        q = q.interval(interval)
    return q


def _refs(targets: list[tuple[str, str]]) -> list[str]:
    """Grafana's query letters, one per target: A, B, C, …"""
    if len(targets) > 26:
        raise ValueError(f"{len(targets)} queries in one panel: Grafana names only A-Z")
    return [chr(ord("A") + i) for i in range(len(targets))]


@dataclasses.dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # dashboard uid
    panel_id: int
    panel: str  # panel title
    ref_id: str
    expr: str
    instant: bool
    #: True when a healthy system may legitimately return no data (nothing configured/happened).
    optional: bool


class Board:
    """A dashboard under construction: numbers panels, remembers which ones may be empty."""

    def __init__(self, uid: str, title: str, description: str, tags: list[str], time_from: str = "now-6h",
                 refresh: str = "30s"):
        self.uid = uid
        self.builder = (
            dash_b.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(["callkpi"] + tags)
            .time(time_from, "now")
            .refresh(refresh)
            .timezone("browser")
            .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
            .readonly()
        )
        self.next_id = 1
        self.optional: set[str] = set()

    def _id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def panel(self, panel: Any, optional: bool = False) -> Board:
        built = panel.id(self._id()).datasource(DATASOURCE)
        self.builder.with_panel(built)
        if optional:
            self.optional.add(built.build().title)
        return self

    def row(self, title: str, repeat: str | None = None) -> Board:
        r = dash_b.Row(title).id(self._id())
        if repeat:
            r = r.repeat(repeat)
        self.builder.with_row(r)
        return self

    def variable(self, var: cog_builder.Builder[dash_m.VariableModel]) -> Board:
        self.builder.with_variable(var)
        return self

    def build(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.builder.build(), cls=JSONEncoder))


def label_values_var(name: str, metric: str, label: str, label_text: str, multi: bool = True) -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable(name)
        .label(label_text)
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {label})")
        .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(True)
        .all_value(".*")
        .current(dash_m.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def campaign_var() -> dash_b.QueryVariable:
    """The campaign selector of every per-campaign board (`$campaign`, all by default)."""
    return label_values_var("campaign", "callcenter_dialed_total", "campaign", "Campaign")


def custom_var(name: str, label: str, values: list[str], default: str) -> dash_b.CustomVariable:
    return (
        dash_b.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(dash_m.VariableOption(selected=True, text=default, value=default))
    )


def stat(title: str, expr: str, unit: str, th: dash_b.ThresholdsConfig, *, legend: str | None = None, description: str = "",
         w: int = 4, h: int = 5, text_mode: common_m.BigValueTextMode = common_m.BigValueTextMode.AUTO,
         decimals: float | None = None) -> stat_b.Panel:
    p = (
        stat_b.Panel()
        .title(title)
        .description(description)
        .with_target(query(expr, legend, instant=True))
        .unit(unit)
        .thresholds(th)
        .color_mode(common_m.BigValueColorMode.BACKGROUND)
        .graph_mode(common_m.BigValueGraphMode.NONE)
        .text_mode(text_mode)
        .justify_mode(common_m.BigValueJustifyMode.CENTER)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("–")
        .span(w)
        .height(h)
    )
    if decimals is not None:
        p = p.decimals(decimals)
    return p


def timeseries(title: str, targets: list[tuple[str, str]], unit: str, *, description: str = "", w: int = 12,
               h: int = 8, stacked: bool = False, bars: bool = False, interval: str | None = None,
               min_val: float | None = 0, max_val: float | None = None,
               th: dash_b.ThresholdsConfig | None = None) -> timeseries_b.Panel:
    p = (
        timeseries_b.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .span(w)
        .height(h)
        .fill_opacity(20 if stacked else 10)
        .legend(common_b.VizLegendOptions().display_mode(common_m.LegendDisplayMode.LIST)
                .placement(common_m.LegendPlacement.BOTTOM).show_legend(True))
        .tooltip(common_b.VizTooltipOptions().mode(common_m.TooltipDisplayMode.MULTI)
                 .sort(common_m.SortOrder.DESCENDING))
    )
    for ref, (expr, legend) in zip(_refs(targets), targets, strict=True):
        p = p.with_target(query(expr, legend, ref=ref, interval=interval))
    if stacked:
        p = p.stacking(common_b.StackingConfig().mode(common_m.StackingMode.NORMAL))
    if bars:
        p = p.draw_style(common_m.GraphDrawStyle.BARS).fill_opacity(60)
    if interval:
        p = p.interval(interval)
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    if th is not None:
        p = p.thresholds(th).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common_m.GraphThresholdsStyleMode.DASHED)
        )
    return p


def bargauge(title: str, targets: list[tuple[str, str]], unit: str, th: dash_b.ThresholdsConfig, *, description: str = "", w: int = 12,
             h: int = 8, vertical: bool = False, min_val: float | None = 0,
             max_val: float | None = None) -> bargauge_b.Panel:
    p = (
        bargauge_b.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .thresholds(th)
        .display_mode(common_m.BarGaugeDisplayMode.GRADIENT)
        .orientation(common_m.VizOrientation.VERTICAL if vertical else common_m.VizOrientation.HORIZONTAL)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .show_unfilled(True)
        .span(w)
        .height(h)
    )
    for ref, (expr, legend) in zip(_refs(targets), targets, strict=True):
        p = p.with_target(query(expr, legend, ref=ref, instant=True))
    if min_val is not None:
        p = p.min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    return p


def gauge(title: str, expr: str, legend: str, unit: str, th: dash_b.ThresholdsConfig, *, description: str = "", w: int = 8, h: int = 7,
          max_val: float = 0.05) -> gauge_b.Panel:
    return (
        gauge_b.Panel()
        .title(title)
        .description(description)
        .with_target(query(expr, legend, instant=True))
        .unit(unit)
        .min(0)
        .max(max_val)
        .thresholds(th)
        .show_threshold_markers(True)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(w)
        .height(h)
    )


def _rename(field: str, name: str, unit: str | None = None,
            extra: list[dash_m.DynamicConfigValue] | None = None) -> tuple[str, list[dash_m.DynamicConfigValue]]:
    props = [dash_m.DynamicConfigValue(id_val="displayName", value=name)]
    if unit:
        props.append(dash_m.DynamicConfigValue(id_val="unit", value=unit))
    props += extra or []
    return field, props


class Column(NamedTuple):
    """A table's value column: an instant query, its header and unit, more field overrides."""

    expr: str
    title: str
    unit: str | None = None
    overrides: tuple[dash_m.DynamicConfigValue, ...] = ()


def table(title: str, labels: dict[str, str], values: list[Column], *,
          description: str = "", w: int = 24, h: int = 12, sort_by: str | None = None,
          hide: tuple[str, ...] = ()) -> table_b.Panel:
    """A table joining instant queries on their labels (transformation `merge`): the `labels`
    (label -> header) first, then a column per query (Grafana's field "Value #A", #B, ...)."""
    p = (
        table_b.Panel()
        .title(title)
        .description(description)
        .span(w)
        .height(h)
        .cell_height(common_m.TableCellHeight.SM)
        .with_transformation(dash_m.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dash_m.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, **{h_: True for h_ in hide}},
                    "indexByName": {},
                    "renameByName": {},
                },
            )
        )
    )
    refs = _refs([(c.expr, c.title) for c in values])
    for ref, c in zip(refs, values, strict=True):
        p = p.with_target(query(c.expr, None, ref=ref, table=True))
    for label, name in labels.items():
        p = p.override_by_name(*_rename(label, name))
    for ref, c in zip(refs, values, strict=True):
        p = p.override_by_name(*_rename(f"Value #{ref}", c.title, c.unit, list(c.overrides)))
    if sort_by:
        p = p.sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(True)])
    return p


def color_cell(mode: str = "color-background") -> dash_m.DynamicConfigValue:
    return dash_m.DynamicConfigValue(id_val="custom.cellOptions", value={"type": mode})
