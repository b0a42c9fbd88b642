"""The benchmark harness runs end to end (Celeriac only, tiny sizes: a few seconds).

Nothing here asserts a figure (SPEC §10): only that the harness starts its own server
and worker, drains, stops everything and prints its table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loadtests.results import Results
from loadtests.table import comparison, peer_rows

ROOT = Path(__file__).resolve().parents[2]


def loadtests(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m loadtests ARGS`` from the repository, outside any CELERIAC_ setting."""
    return subprocess.run(
        [sys.executable, "-m", "loadtests", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("CELERIAC_")},
        stdin=subprocess.DEVNULL,
    )


def test_bench_drains_and_prints_a_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--quick", "--runs", "200", "--only", "drain", "--systems", "celeriac"]
    done = loadtests("bench", *args, "--kinds", "add", "--json", str(out), timeout=90)
    assert done.returncode == 0, done.stderr
    assert "| drain prefork -c 2, add (runs/s)" in done.stdout
    assert "!!" not in done.stderr  # no experiment failed
    assert '"metric": "drain/s"' in out.read_text()


def test_cluster_drain_loses_nothing_on_either_backend() -> None:
    args = ["--runs", "300", "--repeat", "1", "--pools", "threads -c 8", "--timeout", "60"]
    done = loadtests("cluster-drain", *args, timeout=120)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| threads -c 8"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "0 / 0", row  # every run SUCCESS with its result, on both


def test_canvas_bench_checks_its_results() -> None:
    args = ["--members", "200", "--repeat", "1", "--systems", "celeriac"]  # Celery: bench extra
    done = loadtests("canvas", *args, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| chord", "| group"))]
    assert len(rows) == 2, done.stdout  # each value checked against n(n-1) before printing


def test_ratios_are_celeriac_over_each_peer() -> None:
    results = Results()
    for system, rate in (("celeriac", 300.0), ("celery", 100.0), ("dramatiq", 150.0)):
        results.add("enqueue/s", system, "add", rate)
    text = comparison(results, peer_rows(results, ["add"], {}))
    row = next(line for line in text.splitlines() if "enqueue one at a time" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:] == ["300", "100", "150", "3.00", "2.00", "higher"]
