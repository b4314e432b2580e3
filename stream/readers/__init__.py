"""readers layer (see docs/architecture.md)."""
