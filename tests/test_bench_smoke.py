"""A tiny run of the benchmark, so `make bench` never rots (its goals are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent / "bench" / "bench.py"


def test_bench_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--output", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| scenario | CMS | baseline |" in done.stdout
    result = json.loads(out.read_text())
    scenarios = " ".join(row["scenario"] for row in result["rows"])
    for name in ("read one item", "revalidate", "GET /site", "one edit", "concurrent edits", "merged edits",
                 "item history", "?at=", "/history", "cms reindex", "memory", "repository size",
                 "repository growth per image", "papers"):  # fmt: skip
        assert name in scenarios
    for row in result["rows"]:
        assert row["cms"] > 0 and row["baseline"] > 0, row
    for kind in ("concurrent", "merged"):
        row = next(r for r in result["rows"] if r["scenario"].startswith(kind))
        assert " 0 lost" in row["note"] and " 0 refused" in row["note"], row
