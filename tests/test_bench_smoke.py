"""The benchmark (`make bench`) runs end to end at toy size and reports every figure.

Only the shape of the results is checked, never a timing: this machine is shared.
"""

import json
import os
import subprocess
import sys
import urllib.parse

import pytest

from bench.scenarios import SCENARIOS
from tests.server import ROOT

pytestmark = pytest.mark.server

# The scenarios each target runs; every other scenario is reported as not applicable.
RUNS = {
    "site": set(SCENARIOS),
    "site-daphne": {"room", "direct"},
    "naive": {"room", "connections"},
    "raw": {"room", "connections"},
}


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _figures(scenario: str, entry: dict) -> list:
    """The numbers each scenario must report."""
    if scenario == "connections":
        return [entry["opened"], entry["kib_per_connection"], entry["handshake"]["p99_ms"]]
    if scenario in ("room", "direct"):
        assert entry["steps"], f"{scenario} ran no step"
        values = [entry["capacity_deliveries_per_s"]] if scenario == "room" else []
        for step in entry["steps"]:
            values += [step["deliveries_per_s"], step["p50_ms"], step["p99_ms"], step["lost"]]
        return values
    if scenario == "presence":
        return [entry["settled_after_s"], entry["observer_frames_per_s"], entry["opened"]]
    return [
        entry["messages"],
        *(entry[kind][figure] for kind in ("history", "sync") for figure in ("p50_ms", "p99_ms")),
        *(entry[kind]["concurrent"]["p99_ms"] for kind in ("history", "sync")),
    ]


def _database_options() -> tuple[list[str], dict]:
    """Runs on the suite's database engine: PostgreSQL when DATABASE_URL names one."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return ["--sqlite"], {}
    server = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=""))
    return [], {"BENCH_PG_URL": server}


@pytest.mark.timeout(420)
def test_smoke_run_reports_every_target_and_scenario(tmp_path):
    options, env = _database_options()
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path), *options],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]

    (result_file,) = tmp_path.glob("*.json")
    results = json.loads(result_file.read_text())
    assert set(results["targets"]) == set(RUNS)
    for target, entry in results["targets"].items():
        assert set(entry["scenarios"]) == set(SCENARIOS), target
        for scenario, figures in entry["scenarios"].items():
            if scenario not in RUNS[target]:
                assert figures == {"applicable": False}, (target, scenario)
                continue
            values = _figures(scenario, figures)
            assert all(_number(v) for v in values), (target, scenario, figures)
    assert results["targets"]["site"]["scenarios"]["history"]["messages"] == 1000
    assert set(results["ratios"]) == {
        "room_capacity_site_over_naive",
        "room_capacity_site_over_raw",
        "room_capacity_site_over_site_daphne",
    }
    assert "room: capacity" in done.stdout  # the table was printed
    assert result_file.with_suffix(".png").stat().st_size > 0
