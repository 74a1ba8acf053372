"""Load from ``wrk`` and the CPU it costs, for ``bench/bench_pages.py``.

A load generator written in Python shared the two cores with the shop and saturated first
(~800 pages/s where ``wrk`` gets 1,300-1,600), squeezing every ratio toward 1. ``wrk`` (C,
Debian's package, installed by ``make bench``) sends the pages here; a Lua script gives each
request the next visitor's cookies in turn, as 16 browsers would. Each block also reads the CPU
time (user + system) of the shop's process group, master and workers with all their threads,
from ``/proc``: pages per CPU second is disturbed far less than pages/s by what else runs on
a shared machine. The client's own CPU (``wrk``, a child of this process: its rusage once it
has exited) is reported beside it, so a reader can see the client does not bound the figures.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONNECTIONS = 16
TICKS = os.sysconf("SC_CLK_TCK")
# What a browser sends with every page besides its cookies.
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate, br",
    "Accept-Language": "en-US,en;q=0.9",
}

_SCRIPT = """
local visitors = {%(visitors)s}
local path = %(path)s
local requests = {}
init = function(args)
  for i, headers in ipairs(visitors) do requests[i] = wrk.format("GET", path, headers) end
end
local n = 0
request = function()
  n = n %% #requests + 1
  return requests[n]
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "us": %%d, "status_errors": %%d, "socket_errors": %%d, "p50_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50)))
end
"""


def _lua(text: str) -> str:
    return "[==[" + text + "]==]"


def lua_script(path: str, cookies: list[str]) -> str:
    """The script that sends ``path`` with each visitor's ``Cookie`` header in turn."""
    visitors = ",\n".join(
        "{" + ", ".join(f"[ {_lua(k)} ] = {_lua(v)}" for k, v in headers.items()) + "}"
        for headers in ({**BROWSER_HEADERS, "Cookie": cookie} for cookie in cookies)
    )
    return _SCRIPT % {"visitors": visitors, "path": _lua(path)}


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group
    ``pgid``."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:  # pgrp; utime and stime are fields 14 and 15 of stat
            ticks += int(fields[11]) + int(fields[12])
    return ticks / TICKS


@dataclass(frozen=True)
class Block:
    """One run of ``wrk`` against one shop."""

    pages: int
    seconds: float
    server_cpu: float  # seconds, the shop's process group
    client_cpu: float  # seconds, wrk
    failed: int  # non-2xx answers and socket errors

    @property
    def rate(self) -> float:
        return self.pages / self.seconds

    @property
    def per_cpu(self) -> float:
        """Pages per CPU second of the shop."""
        return self.pages / max(self.server_cpu, 1 / TICKS)

    @property
    def client_share(self) -> float:
        """The client's part of the CPU the shop and the client used together."""
        return self.client_cpu / max(self.server_cpu + self.client_cpu, 1e-9)


def wrk(url: str, pgid: int, cookies: list[str], seconds: int = 1) -> Block:
    """``seconds`` of closed-loop load from ``CONNECTIONS`` connections on one ``wrk`` thread,
    the requests cycling through ``cookies`` (one ``Cookie`` header per visitor)."""
    base, _, path = url.partition("//")[2].partition("/")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script("/" + path, cookies))
    try:
        before = group_cpu(pgid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{seconds}s",
                "-s",
                script.name,
                f"http://{base}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        server = group_cpu(pgid) - before
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(script.name)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    failed = summary["status_errors"] + summary["socket_errors"]
    return Block(
        pages=summary["requests"] - summary["status_errors"],
        seconds=summary["us"] / 1e6,
        server_cpu=server,
        client_cpu=(after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
        failed=failed,
    )
