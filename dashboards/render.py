"""The renderer: every generated file under dashboards/, written or checked (``--check``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .boards import dashboards
from .common import HERE
from .prometheus_config import prometheus_config
from .rules import render_rules


def outputs(root: Path = HERE) -> dict[Path, str]:
    """path -> text of every generated file, below `root` (dashboards/ unless a test says otherwise)."""
    files = {
        root / "grafana" / f"{name}.json": json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, model in dashboards().items()
    }
    files[root / "prometheus" / "rules.yml"] = render_rules()
    files[root / "prometheus" / "prometheus.yml"] = prometheus_config()
    return files


def main(argv: list[str] | None = None, root: Path = HERE) -> int:
    ap = argparse.ArgumentParser(description="Regenerate (or --check) dashboards/grafana/*.json and dashboards/prometheus/*.yml.")
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the generator")
    args = ap.parse_args(argv)
    files = outputs(root)
    grafana_dir = root / "grafana"
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        expected_json = {p.name for p in files if p.parent == grafana_dir}
        extra = [p for p in grafana_dir.glob("*.json") if p.name not in expected_json]
        for p in stale:
            print(f"stale: {p.relative_to(root.parent)} (run: python dashboards/build.py)", file=sys.stderr)
        for p in extra:
            print(f"not generated: {p.relative_to(root.parent)} (delete it or add it to dashboards/boards/)",
                  file=sys.stderr)
        return 1 if stale or extra else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(root.parent)}")
    return 0
