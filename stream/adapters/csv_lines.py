"""Reading a CSV export one line at a time (the file adapters checkpoint by line): a line's
fields, and a data line's fields by the export's header row."""

from __future__ import annotations

import csv
import io

from stream.adapters.core import BadRecord


def csv_fields(text: str, delimiter: str = ",") -> list[str]:
    """One CSV line's fields (the file adapters read line by line, for checkpoints)."""
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except (csv.Error, StopIteration):
        raise BadRecord("bad_csv", "not a CSV line") from None


def by_header(header: list[str], fields: list[str]) -> dict[str, str]:
    """A data line's fields by the export's header row, which it must match column for column."""
    if len(fields) != len(header):
        raise BadRecord("wrong_column_count", f"{len(fields)} columns, the header has "
                        f"{len(header)}")
    return dict(zip(header, fields, strict=True))
