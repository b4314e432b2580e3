"""kpi layer (see docs/architecture.md)."""
