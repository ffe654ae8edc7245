"""`make bench`: starts the site, a naive Channels baseline and a raw websockets server in
turn, drives the same load at each, and prints and saves the figures. `make bench-scale`
runs the site as one and as two processes (`site-2p`) for room capacity and the
reconnect storm.

    .venv/bin/python -m bench.run [--smoke] [--only site] [--scenarios room,history]

Results go to bench/results/<timestamp>.json and a chart to <timestamp>.png beside it.
The exit code is 1 if any target or scenario failed to run.
"""

import argparse
import asyncio
import dataclasses
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report, scenarios, targets

RESULTS = Path(__file__).resolve().parent / "results"
# The two-process site last: its figures are compared with the site's, and the
# established comparisons (naive, raw) come first should the time budget run out.
ORDER = ("site", "site-daphne", "naive", "raw", "site-2p")
# The reconnect storm and the two-process site take minutes of their own, which the
# time budget of the comparisons above cannot spare: a plain run leaves them out and
# `make bench-scale` runs them (`--only site --only site-2p --scenarios room,storm`).
# The smoke run, at toy size, runs everything.
SCALE_TARGETS = ("site-2p",)
SCALE_SCENARIOS = ("storm",)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes, a few seconds a target")
    parser.add_argument("--only", action="append", choices=ORDER, help="run only these targets")
    parser.add_argument(
        "--scenarios",
        help="comma-separated subset of "
        + ", ".join(scenarios.SCENARIOS)
        + " (default: all but "
        + ", ".join(SCALE_SCENARIOS)
        + ")",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for JSON and PNG")
    parser.add_argument(
        "--budget", type=float, help="seconds after which no new step starts (570; smoke 240)"
    )
    parser.add_argument(
        "--receiver-processes", type=int, help="load-generator processes for room receivers"
    )
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if PostgreSQL is up")
    parser.add_argument(
        "--room-rates", help="comma-separated room send rates, e.g. 80 to hold one load (profiling)"
    )
    parser.add_argument("--step-seconds", type=float, help="seconds per room and direct step")
    parser.add_argument(
        "--search-messages", type=int, help="searchable messages to seed (1,000,000; smoke 1,000)"
    )
    parser.add_argument(
        "--storm-clients", type=int, help="clients (and users) of the reconnect storm (10,000)"
    )
    return parser.parse_args(argv)


class _Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)


def _stop_on_sigterm() -> None:
    # Turn SIGTERM into KeyboardInterrupt, so every server and database is cleaned up.
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _start(
    name: str, work: Path, sizes: scenarios.Sizes, use_postgres: bool, log, wanted: list[str]
):
    if name == "site-2p":
        # Only the users of its scenarios (room and storm): seeding costs time.
        needed = scenarios.accounts_needed(sizes)
        return targets.site(
            work,
            accounts={group: needed[group] for group in ("room", "storm", "stormsend")},
            history=0,
            use_postgres=use_postgres,
            log=log,
            processes=2,
        )
    if name in ("site", "site-daphne"):
        return targets.site(
            work,
            accounts=scenarios.accounts_needed(sizes),
            # Only the main site target runs the history and slow-reader scenarios,
            # and seeds their messages only when they run.
            history=sizes.history_messages if name == "site" and "history" in wanted else 0,
            long_history=(
                scenarios.LONG_MESSAGES if name == "site" and "room_slow_reader" in wanted else 0
            ),
            search=sizes.search_messages if name == "site" and "search" in wanted else 0,
            use_postgres=use_postgres,
            log=log,
            server_name="uvicorn" if name == "site" else "daphne",
        )
    return targets.naive(work) if name == "naive" else targets.raw(work)


def _run_target(name: str, wanted: list[str], run: scenarios.Run, work: Path, pg: bool) -> dict:
    """Starts one target, runs the wanted scenarios on it, and stops it."""
    entry: dict = {"scenarios": {}}
    run.log(f"=== {name}: starting")
    try:
        with _start(name, work, run.sizes, pg, run.log, wanted) as target:
            entry["description"] = target.description
            entry["database"] = target.database
            run.log(
                f"{name}: {target.description}; server pid {target.server.pid}, port {target.port}"
            )
            for scenario in scenarios.SCENARIOS:
                if scenario not in target.scenarios:
                    entry["scenarios"][scenario] = {"applicable": False}
                    continue
                if scenario not in wanted:
                    continue
                run.log(f"--- {name}: {scenario}")
                began = time.monotonic()
                meter = scenarios.whole_scenario_meter(target)
                meter.start()
                try:
                    figures = asyncio.run(scenarios.SCENARIOS[scenario](target, run))
                except Exception as error:
                    run.log(f"{name}: {scenario} FAILED: {error!r}\n{traceback.format_exc()}")
                    figures = {"error": repr(error)}
                figures["seconds"] = round(time.monotonic() - began, 1)
                figures["scenario_cpu"] = meter.stop()
                entry["scenarios"][scenario] = figures
                waited = asyncio.run(scenarios.quiesce(target))
                if waited >= 1:
                    run.log(f"{name}: server still busy for {waited} s after {scenario}")
                if target.database_url:
                    analyzed = targets.autovacuum_analyze(target.database_url)
                    if analyzed:
                        run.log(f"{name}: ANALYZE as autovacuum would: {', '.join(analyzed)}")
    except Exception as error:
        run.log(f"{name}: FAILED: {error!r}\n{traceback.format_exc()}")
        entry["error"] = repr(error)
    return entry


def _code_version() -> dict:
    """The commit measured, and which files of the site differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=targets.ROOT, capture_output=True, text=True)
        # Trailing white space only: a porcelain line starts with a space (" M chat/x.py").
        return done.stdout.rstrip()

    changed = git("status", "--porcelain", "--", "chat", "chatsite").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": [line[3:] for line in changed]}


def _failed(results: dict) -> bool:
    return any(
        "error" in entry or any("error" in s for s in entry["scenarios"].values())
        for entry in results["targets"].values()
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit code."""
    options = _parse(argv)
    _stop_on_sigterm()
    clock = _Clock()
    sizes = scenarios.SMOKE if options.smoke else scenarios.FULL
    if options.receiver_processes:
        sizes = dataclasses.replace(sizes, receiver_processes=options.receiver_processes)
    if options.room_rates:
        rates = tuple(int(rate) for rate in options.room_rates.split(","))
        sizes = dataclasses.replace(sizes, room_rates=rates)
    if options.step_seconds:
        seconds = options.step_seconds
        sizes = dataclasses.replace(sizes, room_step_seconds=seconds, direct_step_seconds=seconds)
    if options.search_messages is not None:
        sizes = dataclasses.replace(sizes, search_messages=options.search_messages)
    if options.storm_clients:
        count = options.storm_clients
        sizes = dataclasses.replace(sizes, storm_clients=count, storm_users=count)
    budget = options.budget or (240 if options.smoke else 570)
    run = scenarios.Run(sizes=sizes, log=clock.log, deadline=clock.started + budget)
    if options.scenarios:
        wanted = [s.strip() for s in options.scenarios.split(",") if s.strip()]
    else:
        wanted = [s for s in scenarios.SCENARIOS if options.smoke or s not in SCALE_SCENARIOS]
    names = options.only or [n for n in ORDER if options.smoke or n not in SCALE_TARGETS]
    unknown = set(wanted) - set(scenarios.SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    open_files = scenarios.raise_open_files_limit()
    use_postgres = not options.sqlite and targets.postgres_available()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict = {
        "started_at": stamp,
        "smoke": options.smoke,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
            "open_files_limit": open_files,
        },
        "sizes": dataclasses.asdict(sizes),
        "code": _code_version(),
        "targets": {},
    }
    load = scenarios.machine_load()
    results["machine"]["others_cpu_at_start"] = load["others"]
    results["machine"]["stolen_cpu_at_start"] = load["stolen"]
    if load["others"] + load["stolen"] > 0.3:
        clock.log(
            f"!! the machine is busy: other processes use {load['others']:.0%} of a core "
            f"and the hypervisor takes {load['stolen']:.0%}; the figures will be noisy"
        )
    clock.log(
        f"benchmark {'smoke run' if options.smoke else 'run'}: {os.cpu_count()} cpus, "
        f"open files {open_files}, database {'postgresql' if use_postgres else 'sqlite'}, "
        f"budget {budget:.0f} s"
    )
    with targets.workdir() as work:
        try:
            for name in names:
                results["targets"][name] = _run_target(name, wanted, run, work, use_postgres)
        except KeyboardInterrupt:
            clock.log("interrupted; servers stopped")
            return 130
        failed = _failed(results)
        if failed:
            logs = options.out / f"{stamp}-logs"
            logs.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, logs / log.name)
            clock.log(f"server logs kept in {logs}")
    results["duration_s"] = round(time.monotonic() - clock.started, 1)
    results["ratios"] = report.ratios(results)
    results["goals"] = report.goals(results)
    json_path = options.out / f"{stamp}.json"
    chart_path = options.out / f"{stamp}.png"
    report.write_json(results, json_path)
    report.chart(results, chart_path)
    json_path.with_suffix(".md").write_text(report.markdown(results))
    print()
    print(report.table(results))
    print()
    clock.log(f"results: {json_path}")
    clock.log(f"chart:   {chart_path}")
    clock.log(f"table:   {json_path.with_suffix('.md')} (Markdown)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
