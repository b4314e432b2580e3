"""History: daily and weekly trends of the exported counters per campaign, as far back as
Prometheus keeps them.

What lives where (docs/reports.md): Prometheus for recent trends of the per-campaign counters
(its retention, typically 15 to 90 days); the API's local-day buckets for 13 months of every
scope and KPI (`GET /api/v1/series`, the /reports page); reports for sharing a period.
Each bar is one Grafana interval (`$period`), aligned by Grafana, not to the center's local days
the API answers with: for exact local days use the API.
"""

from __future__ import annotations

from ..panels import Board, campaign_var, custom_var, timeseries
from ..recording import RETRACTED, catalog_quotient

SEL = 'campaign=~"$campaign"'


def net(metric: str, window: str = "$period") -> str:
    """Per campaign: increase() of an exported counter minus what late events took back
    (`callcenter_retracted_total`, docs/observability.md); a missing retraction series is 0."""
    counter = metric.removeprefix("callcenter_").removesuffix("_total")
    added = f"sum by (campaign) (increase({metric}{{{SEL}}}[{window}]))"
    back = f'sum by (campaign) (increase({RETRACTED}{{{SEL}, counter="{counter}"}}[{window}]))'
    return f"({added} - ({back} or {added} * 0))"


def history() -> Board:
    b = Board(
        "callkpi-history",
        "History",
        "Daily or weekly totals and rates per campaign from the exported counters, as far back as "
        "Prometheus keeps them. 13 months of local days for every scope: the API's series and the "
        "/reports page (docs/reports.md).",
        ["history"],
        time_from="now-30d",
        refresh="1h",
    )
    b.variable(campaign_var())
    b.variable(custom_var("period", "Bucket", ["1d", "1w"], "1d"))

    b.row("Volumes per $period")
    for title, metric, unit in (
        ("Dialed", "callcenter_dialed_total", "none"),
        ("Connected (person)", "callcenter_connected_total", "none"),
        ("Conversions", "callcenter_conversions_total", "none"),
        ("Revenue", "callcenter_revenue_total", "none"),
    ):
        b.panel(timeseries(f"{title} per $period", [(net(metric), "{{campaign}}")], unit, bars=True,
                           stacked=True, interval="$period", w=12, h=8,
                           description=f"increase() of {metric} per bucket, net of late retractions."))

    b.row("Rates per $period")
    for kpi, title in (("connect_rate", "Connect rate"), ("conversion_rate", "Conversion rate"),
                       ("abandon_rate", "Abandon rate")):
        b.panel(timeseries(f"{title} per $period", [(catalog_quotient(kpi, net), "{{campaign}}")],
                           "percentunit", interval="$period", w=8, h=8,
                           description="The catalog's numerator over its denominator, each summed over "
                                       "the bucket (never an average of rates)."))
    return b
