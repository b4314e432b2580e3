#!/usr/bin/env python3
"""Regenerate the observability files (``python dashboards/build.py``, or ``--check``).

A thin entry point: the generator is the ``dashboards`` package (see its ``__init__``).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):
    # run as a script: make the repository root importable so `dashboards` is a package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.render import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
