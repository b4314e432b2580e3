"""The one base of the errors a reader's query can meet (scope, window, range, request)."""

from __future__ import annotations


class QueryError(ValueError):
    """A question that cannot be answered as asked; the message says why. The API answers it
    with 400, `callkpi kpis` with a one-line usage error."""
