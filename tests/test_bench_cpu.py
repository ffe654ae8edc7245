"""The benchmark's CPU meter: what the hypervisor took is told apart from other processes.

On a virtual machine whose cores are shared, Linux counts the time another machine
ran on our core as steal; psutil's busy time includes it. The meter is fed machine
times here (the server, load generator and kernel are not what is under test: the
arithmetic that splits them is).
"""

from collections import namedtuple

import psutil

from bench import scenarios

Times = namedtuple("Times", "user system idle iowait steal")


class _Process:
    """A process whose CPU time is set by the test."""

    pid = 1

    def __init__(self) -> None:
        self.used = 0.0

    def cpu_times(self):
        return namedtuple("P", "user system")(self.used, 0.0)


def test_steal_is_reported_apart_from_other_processes(monkeypatch):
    machine = {"now": Times(user=0.0, system=0.0, idle=0.0, iowait=0.0, steal=0.0)}
    clock = {"now": 0.0}
    monkeypatch.setattr(psutil, "cpu_times", lambda: machine["now"])
    monkeypatch.setattr(scenarios.time, "monotonic", lambda: clock["now"])
    server = _Process()
    meter = scenarios.CpuMeter({"server": server})
    meter.start()
    # Over 10 s: the server used 6 s, other processes 3 s, the hypervisor took 5 s.
    server.used = 6.0
    machine["now"] = Times(user=8.0, system=1.0, idle=6.0, iowait=0.0, steal=5.0)
    clock["now"] = 10.0
    assert meter.stop() == {"server": 0.6, "others": 0.3, "stolen": 0.5}
