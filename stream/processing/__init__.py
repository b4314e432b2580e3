"""processing layer (see docs/architecture.md)."""
