"""The run's results as a table, a JSON file, a chart, and a check against the site's goals.

The room run with stalled readers and the mixed run (edits and reactions) are shown
beside the plain room run: table rows under its rows, a step-by-step comparison, a
line of their own in the chart. Two columns of ratios follow the targets' columns:
site over naive (room capacity, handshakes/s) and two processes over one (room
capacity, the storm). `markdown()` gives the same figures as a table for the docs.
"""

import json
from pathlib import Path

TARGETS = ("site", "site-2p", "site-daphne", "naive", "raw")
# The ratio columns after the targets' columns.
RATIO_COLUMNS = ("site/naive", "2p/site")
NOT_APPLICABLE = "n/a"
# The room runs: as it is, with stalled readers in the room, and with edits and
# reactions besides the messages (the mixed run); with their labels beside it.
ROOM_RUNS = ("room", "room_slow_reader", "mixed")
STALLED = "  with stalled readers"
MIXED = "  with edits and reactions"
# Each room run's line in the chart: marker and line style, and what the legend adds.
LINES = {
    "room": ("o-", ""),
    "room_slow_reader": ("s--", ", stalled readers"),
    "mixed": ("^:", ", edits and reactions"),
}


def _scenario(results: dict, target: str, name: str) -> dict | None:
    """One scenario's figures, or None when it was not run, not applicable or failed."""
    entry = results["targets"].get(target, {}).get("scenarios", {}).get(name)
    if not entry or entry.get("applicable") is False or "error" in entry or "skipped" in entry:
        return None
    return entry


def _step(results: dict, target: str, scenario: str, rate: int) -> dict | None:
    entry = _scenario(results, target, scenario)
    return next((s for s in (entry or {}).get("steps", []) if s["rate"] == rate), None)


def ratios(results: dict) -> dict[str, float | None]:
    """Room capacity of the site over the naive baseline's and over the raw server's, and
    the site's with stalled readers present over its own without them."""

    def capacity(target: str, scenario: str = "room") -> float | None:
        return (_scenario(results, target, scenario) or {}).get("capacity_deliveries_per_s")

    def over(mine: float | None, other: float | None) -> float | None:
        if mine is None or not other:
            return None
        return round(mine / other, 2)

    def handshakes(target: str) -> float | None:
        return (_scenario(results, target, "connections") or {}).get("opens_per_s")

    site = capacity("site")
    return {
        "room_capacity_site_over_naive": over(site, capacity("naive")),
        "room_capacity_site_over_raw": over(site, capacity("raw")),
        "room_capacity_site_over_site_daphne": over(site, capacity("site-daphne")),
        "room_capacity_stalled_readers_over_none": over(capacity("site", "room_slow_reader"), site),
        "room_capacity_two_processes_over_one": over(capacity("site-2p"), site),
        "handshakes_per_s_site_over_naive": over(handshakes("site"), handshakes("naive")),
    }


def goals(results: dict) -> list[dict]:
    """The site's performance goals, each with what this run measured and whether it met it."""
    found = []

    def goal(name: str, measured: str, met: bool | None) -> None:
        found.append({"goal": name, "measured": measured, "met": met})

    r = results.get("ratios") or ratios(results)
    naive_ratio, raw_ratio = r["room_capacity_site_over_naive"], r["room_capacity_site_over_raw"]
    goal(
        "room capacity >= 3x naive",
        f"{naive_ratio}x" if naive_ratio is not None else NOT_APPLICABLE,
        None if naive_ratio is None else naive_ratio >= 3,
    )
    goal(
        "room capacity >= 0.5x raw",
        f"{raw_ratio}x" if raw_ratio is not None else NOT_APPLICABLE,
        None if raw_ratio is None else raw_ratio >= 0.5,
    )
    two = r.get("room_capacity_two_processes_over_one")
    goal(
        "room capacity of two processes >= 1.6x one",
        f"{two}x" if two is not None else NOT_APPLICABLE,
        None if two is None else two >= 1.6,
    )
    shakes = r.get("handshakes_per_s_site_over_naive")
    goal(
        "handshakes/s: site >= naive",
        f"{shakes}x" if shakes is not None else NOT_APPLICABLE,
        None if shakes is None else shakes >= 1,
    )
    dm = _step(results, "site", "direct", 1000)
    goal(
        "direct messages 1,000/s: p99 <= 50 ms, none lost",
        f"p99 {dm['p99_ms']} ms, lost {dm['lost']}" if dm else NOT_APPLICABLE,
        None if dm is None else dm["lost"] == 0 and (dm["p99_ms"] or 0) <= 50,
    )
    dm2 = _step(results, "site", "direct", 2000)
    goal(
        "direct messages 2,000/s: none lost",
        f"lost {dm2['lost']} of {dm2['expected']:,}, p99 {dm2['p99_ms']} ms"
        if dm2
        else NOT_APPLICABLE,
        None if dm2 is None else dm2["lost"] == 0,
    )
    for target in ("site", "site-2p"):
        storm = _scenario(results, target, "storm")
        goal(
            f"reconnect storm ({target}): all back and synced within 30 s, none lost",
            _storm_summary(storm) if storm else NOT_APPLICABLE,
            None
            if storm is None
            else storm["all_synced_s"] is not None
            and storm["all_synced_s"] <= 30
            and storm["lost"] == 0
            and storm["doubled"] == 0,
        )
    conn = _scenario(results, "site", "connections")
    goal(
        "<= 64 KiB server memory per idle connection",
        f"{conn['kib_per_connection']} KiB ({conn['opened']:,} sockets)" if conn else "n/a",
        None if conn is None else conn["kib_per_connection"] <= 64,
    )
    mixed = _scenario(results, "site", "mixed")
    goal(
        "mixed run: every receiver ends with every message and change, none lost",
        (
            f"lost {_total(mixed, 'lost'):,} of {_total(mixed, 'checked'):,} final copies; "
            f"server state missing {_total(mixed, 'server_lost'):,} of what was done "
            f"({_total(mixed, 'sent'):,} messages, {_total(mixed, 'edits'):,} edits, "
            f"{_total(mixed, 'reactions'):,} reactions)"
        )
        if mixed
        else NOT_APPLICABLE,
        None if mixed is None else _total(mixed, "lost") + _total(mixed, "server_lost") == 0,
    )
    storm = _scenario(results, "site", "presence")
    if storm:
        settled = storm["settled_after_last_open_s"]
        coalesced = storm["observer_frames_per_s"] <= 10
        # The storm must arrive as one: every handshake done within a second of the
        # last user's attempt, or the server, not the storm, set the pace.
        kept_up = storm["connect_seconds"] <= results["sizes"]["presence_spread_seconds"] + 1
        goal(
            "presence storm settled within 2 s, coalesced frames",
            f"complete {_ms(settled)} s after the last of {storm['opened']} of "
            f"{storm['users']} users connected (connecting took {storm['connect_seconds']} s "
            f"for a {results['sizes']['presence_spread_seconds']} s storm); "
            f"{storm['observer_frames_per_s']} frames/s at the observer",
            # Every user of the storm must have got in, too.
            storm["opened"] == storm["users"]
            and kept_up
            and settled is not None
            and settled <= 2
            and coalesced,
        )
    else:
        goal("presence storm settled within 2 s, coalesced frames", NOT_APPLICABLE, None)
    pages = _scenario(results, "site", "history")
    for kind, size in (("history", 50), ("sync", 100)):
        figures = (pages or {}).get(kind)
        goal(
            f"{kind} ({size} messages) p99 <= 20 ms at 1,000,000 messages",
            f"p99 {figures['p99_ms']} ms (one client) at {pages['messages']:,} messages; "
            f"{figures['concurrent']['clients']} clients: p99 "
            f"{figures['concurrent']['p99_ms']} ms at {figures['concurrent']['per_s']} pages/s"
            if figures
            else NOT_APPLICABLE,
            None if not figures else (figures["p99_ms"] or 0) <= 20,
        )
    searches = _scenario(results, "site", "search")
    measured = searches and searches.get("p99_ms") is not None
    goal(
        "search p99 <= 50 ms at 1,000,000 messages",
        f"p99 {searches['p99_ms']} ms (one client, {searches['requests']} searches) at "
        f"{searches['messages']:,} messages"
        if measured
        else NOT_APPLICABLE,
        None if not measured else searches["p99_ms"] <= 50 and searches["messages"] >= 1_000_000,
    )
    return found


def _storm_summary(storm: dict) -> str:
    return (
        f"{storm['synced']:,} of {storm['dropped']:,} clients back and synced, all after "
        f"{_ms(storm['all_synced_s'])} s (p50 {_ms(storm['reconnect_p50_s'])} s); "
        f"{storm['messages_sent']} sent, lost {storm['lost']}, doubled {storm['doubled']}"
    )


def _ms(value) -> str:
    return NOT_APPLICABLE if value is None else f"{value:g}"


def _total(entry: dict | None, figure: str) -> int:
    """A figure of the mixed run summed over its steps (`checked`: the copies compared)."""
    steps = (entry or {}).get("steps", [])
    if figure == "checked":
        return sum(step["copies"]["checked"] for step in steps)
    return sum(step[figure] for step in steps)


def _given_up(entry: dict) -> str:
    """Stalled readers the server dropped, and their median life.

    The server logs each socket it gives up as too slow; should its log count
    differ, that count is shown too.
    """
    dropped, logged = entry["stalled_given_up"], entry["stalled_too_slow_logged"]
    lifetime = entry["stalled_lifetime_s"]
    after = f", {lifetime['median']:g} s" if lifetime else ""
    return f"{dropped}{'' if logged == dropped else f' ({logged} logged)'}{after}"


def room_comparison(results: dict) -> list[str]:
    """Each room step beside the same step with stalled readers, and in the mixed run,
    for every target that ran both."""
    lines = []
    labels = {
        "room_slow_reader": "with stalled readers",
        "mixed": "with edits and reactions (lost: final copies; late: frames after the drain)",
    }
    for scenario, label in labels.items():
        for target in TARGETS:
            plain = _scenario(results, target, "room")
            other_run = _scenario(results, target, scenario)
            if not plain or not other_run:
                continue
            lines.append(
                f"room steps on {target}, without | {label} (deliveries/s, p50 / p99 ms, lost):"
            )
            others = {s["rate"]: s for s in other_run["steps"]}
            for step in plain["steps"]:
                other = others.get(step["rate"])
                lines.append(
                    f"  {step['rate']:>6}/s  {_step_figures(step):>34}  |  "
                    + (_step_figures(other) if other else "not run")
                )
            for rate in sorted(set(others) - {s["rate"] for s in plain["steps"]}):
                lines.append(f"  {rate:>6}/s  {'not run':>34}  |  {_step_figures(others[rate])}")
    return lines


def _step_figures(step: dict) -> str:
    late = f", late {step['late']:,}" if "late" in step else ""
    return (
        f"{step['deliveries_per_s']:,.0f}, {_ms(step['p50_ms'])} / {_ms(step['p99_ms'])}, "
        f"{step['lost']:,}{late}{'' if step['ok'] else ' BROKEN'}"
    )


def _over(mine, other) -> str:
    if mine is None or not other:
        return ""
    return f"{mine / other:.2f}x"


def _rows(results: dict) -> list[tuple[str, list[str]]]:
    """Each row's label, its cells per target, then the ratio columns (RATIO_COLUMNS)."""
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, scenario: str, figure, number=None) -> None:
        """One row; `number` (an entry's comparable figure) fills the ratio columns."""
        cells = []
        for target in TARGETS:
            entry = results["targets"].get(target, {}).get("scenarios", {}).get(scenario)
            if entry is None or entry.get("applicable") is False:
                cells.append(NOT_APPLICABLE)
            elif "error" in entry:
                cells.append("error")
            elif "skipped" in entry:
                cells.append("skipped")
            else:
                cells.append(figure(entry))
        values = {}
        if number is not None:
            for target in TARGETS:
                entry = _scenario(results, target, scenario)
                values[target] = number(entry) if entry else None
        cells.append(_over(values.get("site"), values.get("naive")))
        cells.append(_over(values.get("site-2p"), values.get("site")))
        rows.append((label, cells))

    def room_rows(label: str, figure) -> None:
        """The plain room run's row, and the same figure of the other room runs under it."""
        row(label, "room", figure)
        row(STALLED, "room_slow_reader", figure)
        row(MIXED, "mixed", figure)

    row(
        "room: capacity, deliveries/s",
        "room",
        lambda e: f"{e['capacity_deliveries_per_s']:,.0f} (at {e['capacity_send_rate']}/s)",
        number=lambda e: e["capacity_deliveries_per_s"],
    )
    for label, scenario in ((STALLED, "room_slow_reader"), (MIXED, "mixed")):
        row(
            label,
            scenario,
            lambda e: f"{e['capacity_deliveries_per_s']:,.0f} (at {e['capacity_send_rate']}/s)",
        )
    room_rows("room: p99 at capacity, ms", lambda e: _ms(e["p99_at_capacity_ms"]))
    room_rows("room: first broken rate, msg/s", lambda e: _ms(e["broke_at_rate"]))
    room_rows("room: lost, all steps", lambda e: f"{sum(s['lost'] for s in e['steps']):,}")
    row("stalled readers: dropped, median life", "room_slow_reader", _given_up)
    row(
        "mixed: edits / reactions sent",
        "mixed",
        lambda e: f"{_total(e, 'edits'):,} / {_total(e, 'reactions'):,}",
    )
    row(
        "mixed: late / lost at end / server",
        "mixed",
        lambda e: f"{_total(e, 'late'):,} / {_total(e, 'lost'):,} / {_total(e, 'server_lost'):,}",
    )
    direct_steps = [(_scenario(results, t, "direct") or {}).get("steps", []) for t in TARGETS]
    for rate in sorted({step["rate"] for steps in direct_steps for step in steps}):

        def dm(entry, rate=rate) -> str:
            step = next((s for s in entry["steps"] if s["rate"] == rate), None)
            if step is None:
                return "not run"
            return f"{_ms(step['p50_ms'])} / {_ms(step['p99_ms'])} / {step['lost']}"

        row(f"direct {rate}/s: p50 / p99 ms / lost", "direct", dm)
    row("connections: open", "connections", lambda e: f"{e['opened']:,} of {e['wanted']:,}")
    row(
        "connections: handshakes/s",
        "connections",
        lambda e: f"{e['opens_per_s']:,.1f}",
        number=lambda e: e["opens_per_s"],
    )
    row(
        "connections: server CPU per handshake, ms",
        "connections",
        lambda e: f"{e['server_cpu_ms_per_handshake']}",
    )
    row("connections: KiB per socket", "connections", lambda e: f"{e['kib_per_connection']}")
    row("connections: handshake p99, ms", "connections", lambda e: _ms(e["handshake"]["p99_ms"]))
    row(
        "presence: complete after, s",
        "presence",
        lambda e: f"{_ms(e['settled_after_s'])} ({_ms(e['settled_after_last_open_s'])} after last)",
    )
    row("presence: frames/s at observer", "presence", lambda e: f"{e['observer_frames_per_s']}")
    for kind, size in (("history", 50), ("sync", 100)):
        row(
            f"{kind} {size}: p99 ms, 1 client / all",
            "history",
            lambda e, kind=kind: (
                f"{_ms(e[kind]['p99_ms'])} / {_ms(e[kind]['concurrent']['p99_ms'])}"
            ),
        )
    row(
        "search: p50 / p99 ms, 1 client",
        "search",
        lambda e: f"{_ms(e.get('p50_ms'))} / {_ms(e.get('p99_ms'))}",
    )
    row(
        "storm: back and synced / dropped",
        "storm",
        lambda e: f"{e['synced']:,} / {e['dropped']:,}",
    )
    row(
        "storm: all back / all synced, s",
        "storm",
        lambda e: f"{_ms(e['all_back_s'])} / {_ms(e['all_synced_s'])}",
    )
    row(
        "storm: reconnect p50 / p90, s",
        "storm",
        lambda e: f"{_ms(e['reconnect_p50_s'])} / {_ms(e['reconnect_p90_s'])}",
    )
    row("storm: server down, s", "storm", lambda e: _ms(e["server_down_s"]))
    row("storm: handshakes refused", "storm", lambda e: f"{e['handshakes_refused']:,}")
    row(
        "storm: sent / lost / doubled",
        "storm",
        lambda e: f"{e['messages_sent']:,} / {e['lost']:,} / {e['doubled']:,}",
    )
    for phase, label in (("connecting", "while connecting"), ("storm", "after the restart")):
        row(
            f"storm: /healthz p50 / max, s, {label}",
            "storm",
            lambda e, phase=phase: _health(e[f"health_{phase}"]),
        )
        row(
            f"storm: health port p50 / max, s, {label}",
            "storm",
            lambda e, phase=phase: _health(e.get(f"health_own_{phase}")),
        )
    return rows


def _health(probes: dict | None) -> str:
    """A /healthz probe's figures: median and slowest answer, and the probes that failed."""
    if probes is None:
        return "n/a"
    failed = f", {probes['failed']} failed" if probes["failed"] else ""
    return f"{_ms(probes['p50_s'])} / {_ms(probes['max_s'])}{failed}"


def table(results: dict) -> str:
    """The table of figures by target, the capacity ratios, the goals and any bottleneck notes."""
    rows = _rows(results)
    width = max(len(label) for label, _ in rows)
    cell = max(12, *(len(c) for _, cells in rows for c in cells))
    lines = [f"{'':{width}}  " + "  ".join(f"{t:>{cell}}" for t in (*TARGETS, *RATIO_COLUMNS))]
    for label, cells in rows:
        lines.append(f"{label:{width}}  " + "  ".join(f"{c:>{cell}}" for c in cells))
    r = results["ratios"]
    lines.append("")
    lines.append(
        f"room capacity ratios: site/naive {_ms(r['room_capacity_site_over_naive'])}, "
        f"site/raw {_ms(r['room_capacity_site_over_raw'])}, "
        f"site/site-daphne {_ms(r.get('room_capacity_site_over_site_daphne'))}, "
        f"site with/without stalled readers "
        f"{_ms(r.get('room_capacity_stalled_readers_over_none'))}, "
        f"two processes/one {_ms(r.get('room_capacity_two_processes_over_one'))}; "
        f"handshakes/s site/naive {_ms(r.get('handshakes_per_s_site_over_naive'))}"
    )
    comparison = room_comparison(results)
    if comparison:
        lines.append("")
        lines += comparison
    lines.append("")
    lines.append("goals (site):")
    for g in results["goals"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        lines.append(f"  {verdict:>12}  {g['goal']}: {g['measured']}")
    notes = bottleneck_notes(results)
    if notes:
        lines.append("")
        lines.append("load generator was the bottleneck in:")
        lines += [f"  {note}" for note in notes]
    return "\n".join(lines)


def bottleneck_notes(results: dict) -> list[str]:
    """Every step in which the load generator, not the server, was saturated."""
    notes = []
    for target in TARGETS:
        for scenario in (*ROOM_RUNS, "direct"):
            for step in (_scenario(results, target, scenario) or {}).get("steps", []):
                if step.get("loadgen_bound"):
                    busy = ", ".join(step["loadgen_busy"]) or "sending fell short"
                    notes.append(f"{target} {scenario} {step['rate']}/s ({busy})")
    return notes


def markdown(results: dict) -> str:
    """The table and the goals as Markdown, ready to paste into docs/performance.md."""
    rows = _rows(results)
    head = ("", *TARGETS, *RATIO_COLUMNS)
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for label, cells in rows:
        lines.append(f"| {label.strip()} | " + " | ".join(cells) + " |")
    lines += ["", "| goal | this run | met? |", "| --- | --- | --- |"]
    for g in results["goals"]:
        verdict = {True: "**yes**", False: "no", None: "not measured"}[g["met"]]
        lines.append(f"| {g['goal']} | {g['measured']} | {verdict} |")
    return "\n".join(lines) + "\n"


def write_json(results: dict, path: Path) -> None:
    """Writes the results, indented."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def chart(results: dict, path: Path) -> None:
    """Draws room fan-out p99 latency against the offered send rate, one line per target
    (dashed: the same run with stalled readers in the room; dotted: the mixed run)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=100)
    colours = {
        "site": "tab:blue",
        "site-2p": "tab:cyan",
        "site-daphne": "tab:purple",
        "naive": "tab:red",
        "raw": "tab:green",
    }
    for target in TARGETS:
        for scenario in ROOM_RUNS:
            entry = _scenario(results, target, scenario)
            steps = [s for s in (entry or {}).get("steps", []) if s["p99_ms"] is not None]
            if not steps:
                continue
            style, label = LINES[scenario]
            rates = [s["rate"] for s in steps]
            p99 = [max(s["p99_ms"], 0.1) for s in steps]
            axes.plot(rates, p99, style, color=colours[target], label=f"{target}{label}")
            lossy = [
                (s["rate"], max(s["p99_ms"], 0.1)) for s in steps if s["lost"] or s.get("late")
            ]
            if lossy:
                axes.plot(*zip(*lossy, strict=True), "x", color="black", markersize=10)
    axes.axhline(100, color="grey", linestyle="--", linewidth=1)
    # x in axes fraction, y in data: the label stays at the left edge on a log scale.
    axes.text(0.01, 110, "100 ms", color="grey", fontsize=8, transform=axes.get_yaxis_transform())
    axes.set_yscale("log")
    axes.set_xscale("log")
    receivers = results["sizes"]["room_receivers"]
    axes.set_xlabel(f"offered send rate into the room, messages/s ({receivers} receivers)")
    axes.set_ylabel("delivery latency p99, ms")
    axes.set_title("Room fan-out p99 (dashed: stalled readers; dotted: edits; x = lost)")
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
