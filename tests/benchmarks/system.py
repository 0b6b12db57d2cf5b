"""What the machine is doing: per-core CPU busy % (/proc/stat), a process's RSS,
and the machine description printed with every result."""

from __future__ import annotations

import os
import platform
from pathlib import Path

CpuTimes = dict[str, tuple[int, int]]  # core -> (busy jiffies, total jiffies)


def cpu_times() -> CpuTimes:
    """Busy and total jiffies per core; idle and iowait count as not busy."""
    times: CpuTimes = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *fields = line.split()
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + values[4]
        total = sum(values)
        times[name] = (total - idle, total)
    return times


def busy_percent(before: CpuTimes, after: CpuTimes) -> dict[str, float]:
    """Per core, the share of the interval spent busy, in percent."""
    busy: dict[str, float] = {}
    for core, (busy_after, total_after) in after.items():
        busy_before, total_before = before.get(core, (0, 0))
        elapsed = total_after - total_before
        busy[core] = round(100.0 * (busy_after - busy_before) / elapsed, 1) if elapsed else 0.0
    return busy


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its live descendants (the workers
    of ``serve --workers N``) have used so far."""
    total = 0
    for member in _process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except FileNotFoundError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may contain spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        member = pending.pop()
        tree.append(member)
        for task in Path(f"/proc/{member}/task").glob("*/children"):
            try:
                pending += [int(child) for child in task.read_text().split()]
            except FileNotFoundError:
                continue
    return tree


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_info() -> dict[str, object]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
            break
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
