"""One base exception per layer where callers catch them: every mistake in a reader's query
(scope, window or range, or the request itself) is a `QueryError`, which the API answers with
400 and `callkpi kpis` with a one-line usage error."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from stream.kpi.errors import QueryError
from stream.kpi.scopes import ScopeError, parse_scope
from stream.kpi.windows import WindowError, resolve_window
from stream.readers.api import BadRequest, resolve_range

UTC = ZoneInfo("UTC")


def test_the_query_errors_share_one_base() -> None:
    for error in (ScopeError, WindowError, BadRequest):
        assert issubclass(error, QueryError) and issubclass(error, ValueError)


@pytest.mark.parametrize("mistake", [
    lambda: parse_scope("planet:mars"),
    lambda: resolve_window("3w", 0, UTC),
    lambda: resolve_range({"window": "1h", "from": "0"}, 0, UTC),
])
def test_each_mistake_is_caught_as_a_query_error(mistake: Callable[[], object]) -> None:
    with pytest.raises(QueryError):
        mistake()
