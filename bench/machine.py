"""What a benchmark result needs beside it to be read later: CPU model, cores, load, Python and the date."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
from typing import Any


def describe_machine() -> dict[str, Any]:
    """The machine as it is now; the CPU's model name comes from /proc/cpuinfo where there is one."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line for a table's header."""
    return (
        f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_average_1m']}, "
        f"Python {machine['python']}, {machine['date']}"
    )
