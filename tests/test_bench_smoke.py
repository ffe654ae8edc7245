"""The benchmark (`make bench`) runs end to end at toy size and reports every figure.

Only the shape of the results is checked, never a timing: this machine is shared.
The correctness figures, the mixed run's lost messages and changes and the reconnect
storm's lost and doubled messages, must be 0.
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

# What the room run with stalled readers reports besides the room run's figures.
STALLED_FIGURES = (
    "stalled_readers",
    "stalled_asked_chars",
    "stalled_given_up",
    "stalled_too_slow_logged",
)

# What the mixed run reports per step besides the room run's figures.
MIXED_FIGURES = ("late", "server_lost", "edits", "reactions", "errors")

# What the reconnect storm reports.
STORM_FIGURES = (
    "dropped",
    "back",
    "synced",
    "all_back_s",
    "all_synced_s",
    "reconnect_p50_s",
    "reconnect_p90_s",
    "server_down_s",
    "handshakes_refused",
    "messages_sent",
    "messages_acked",
    "lost",
    "doubled",
)

# The scenarios each target runs; every other scenario is reported as not applicable.
RUNS = {
    "site": set(SCENARIOS),
    "site-2p": {"room", "storm"},
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
    if scenario in ("room", "room_slow_reader", "mixed", "direct"):
        assert entry["steps"], f"{scenario} ran no step"
        values = [] if scenario == "direct" else [entry["capacity_deliveries_per_s"]]
        for step in entry["steps"]:
            values += [step["deliveries_per_s"], step["p50_ms"], step["p99_ms"], step["lost"]]
        if scenario == "mixed":
            values += [step[figure] for step in entry["steps"] for figure in MIXED_FIGURES]
            values += [step["copies"]["checked"] for step in entry["steps"]]
        if scenario == "room_slow_reader":
            values += [entry[figure] for figure in STALLED_FIGURES]
            values += [step["stalled_present"] for step in entry["steps"]]
        return values
    if scenario == "storm":
        # /healthz was asked while the clients connected and after the restart, on the
        # site's port and on each process's health listener.
        phases = ("connecting", "storm", "own_connecting", "own_storm")
        health = [entry[f"health_{phase}"] for phase in phases]
        assert all(probes["probes"] > 0 for probes in health), health
        return [entry[figure] for figure in STORM_FIGURES] + [
            probes[figure] for probes in health for figure in ("p50_s", "max_s")
        ]
    if scenario == "presence":
        return [entry["settled_after_s"], entry["observer_frames_per_s"], entry["opened"]]
    if scenario == "search":
        assert entry["requests"] > 0 and entry["found_per_search"] > 0, entry
        return [entry["messages"], entry["p50_ms"], entry["p99_ms"], entry["empty_answers"]]
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
    # The stalled readers were in the room before the first step, asking for megabytes.
    stalled = results["targets"]["site"]["scenarios"]["room_slow_reader"]
    assert stalled["steps"][0]["stalled_present"] == stalled["stalled_readers"] >= 1
    assert stalled["stalled_asked_chars"] >= 1_000_000
    assert set(results["ratios"]) == {
        "room_capacity_site_over_naive",
        "room_capacity_site_over_raw",
        "room_capacity_site_over_site_daphne",
        "room_capacity_stalled_readers_over_none",
        "room_capacity_two_processes_over_one",
        "handshakes_per_s_site_over_naive",
    }
    # Every client of each storm was dropped by the restart, came back and caught up;
    # nothing the senders wrote was lost or doubled, over one process and over two.
    for target in ("site", "site-2p"):
        storm = results["targets"][target]["scenarios"]["storm"]
        assert storm["dropped"] == storm["clients"] + storm["senders"], storm
        assert storm["back"] == storm["synced"] == storm["dropped"], storm
        assert storm["messages_sent"] > 0, storm
        assert (storm["lost"], storm["doubled"]) == (0, 0), storm
    # Every receiver of the mixed run ended with every message in its final state,
    # and the server's state held every edit and reaction the senders made.
    mixed = results["targets"]["site"]["scenarios"]["mixed"]
    for step in mixed["steps"]:
        assert step["copies"]["checked"] > 0, step
        assert (step["lost"], step["server_lost"], step["errors"]) == (0, 0, 0), step
    assert sum(step["edits"] for step in mixed["steps"]) > 0
    assert sum(step["reactions"] for step in mixed["steps"]) > 0
    assert "room: capacity" in done.stdout  # the table was printed
    assert "storm: all back / all synced, s" in done.stdout
    assert "connections: handshakes/s" in done.stdout and "site/naive" in done.stdout
    # with the run with stalled readers beside the room run, step by step
    assert "  with stalled readers" in done.stdout
    assert "room steps on site, without | with stalled readers" in done.stdout
    # and the mixed run too
    assert "  with edits and reactions" in done.stdout
    assert "room steps on site, without | with edits and reactions" in done.stdout
    assert result_file.with_suffix(".png").stat().st_size > 0
    assert "| storm: sent / lost / doubled |" in result_file.with_suffix(".md").read_text()
