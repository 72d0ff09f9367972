"""The parts of `scripts/bench gateway|streams|hold|all`: a throw-away stack (fake upstream, `pforte serve`
set up through the real CLI), wrk for plain requests, a small asyncio HTTP/1.1 client for streams, and RSS
from /proc. Nothing here imports the application: the gateway is measured from outside, as clients see it.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
PFORTE = str(ROOT / ".venv" / "bin" / "pforte")
FAKE_UPSTREAM = str(ROOT / "tests" / "fake_upstream.py")
MODEL = "bench"
CHURN_MODEL = "bench-churn"
NATIVE_MODEL = "bench-native"  # the same fake upstream through a connection that offers the Responses API
BIG = "2000000000"
# Every restriction a key can have, each loose enough never to refuse the benchmark's requests (issue 4).
RESTRICTIONS = ("--scope", "llm", "--models", f"{MODEL},{CHURN_MODEL}", "--allow-ip", "127.0.0.1",
                "--allow-ip", "::1", "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32",
                "--quota", "1000000000", "--quota-monthly", "--rpm", BIG, "--rph", BIG,
                "--monthly-requests", BIG, "--max-concurrent", "100000")
OPEN_FILES = 20000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _more_files() -> None:
    """In the child: raise the open-file limit (2,000 streams need 4,000+ sockets in the gateway)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def http_get(port: int, path: str, timeout: float = 1.0) -> int:
    """Status of a GET on loopback (0 when nothing answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = sock.recv(64)
        match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
        return int(match.group(1)) if match else 0
    except OSError:
        return 0


def wait_until_up(port: int, path: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while http_get(port, path) != 200:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[1]} exited with {process.returncode} before it answered")
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} did not answer {path} within {timeout:.0f} s")
        time.sleep(0.05)  # polling a port until it listens


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in kB."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# --- the stack under test ------------------------------------------------------------------------

class Stack:
    """A fake upstream (plus one that closes every kept-alive connection after a few requests) and one
    `pforte serve` on a fresh instance; connection, models and keys made with the real CLI."""

    def __init__(self, churn_every: int = 25, log=print):
        self.churn_every = churn_every
        self.log = log
        self.workdir = Path(tempfile.mkdtemp(prefix="pforte-bench-"))
        self.instance = self.workdir / "instance"
        self.processes: list[subprocess.Popen] = []
        self.upstream_port = free_port()
        self.churn_port = free_port()
        self.port = free_port()
        self.env = {**os.environ, "PFORTE_INSTANCE_PATH": str(self.instance), "PFORTE_DATABASE_URL": "",
                    "PFORTE_RATELIMIT_STORAGE_URI": "memory://", "PFORTE_RATELIMIT_PER_IP": "1000000000/minute",
                    "PFORTE_TRUSTED_PROXIES": "", "PFORTE_LOG_JSON": "false"}
        self.keys: dict[str, str] = {}
        self.server: subprocess.Popen | None = None
        self.upstream: subprocess.Popen | None = None

    # urls
    @property
    def gateway(self) -> tuple[int, str]:
        return self.port, "/v1/chat/completions"

    @property
    def direct(self) -> tuple[int, str]:
        return self.upstream_port, "/v1/chat/completions"

    def cli(self, *args: str) -> str:
        result = subprocess.run([PFORTE, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"pforte {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = (self.workdir / log_name).open("wb")
        process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=_more_files)
        log.close()
        self.processes.append(process)
        return process

    def start(self) -> Stack:
        self.upstream = self._spawn([PYTHON, FAKE_UPSTREAM, "--port", str(self.upstream_port)], "upstream.log")
        churn = self._spawn([PYTHON, FAKE_UPSTREAM, "--port", str(self.churn_port),
                             "--max-requests-per-connection", str(self.churn_every)], "churn.log")
        self.cli("init")
        self.cli("connections", "add", "--name", "fake", "--kind", "openai", "--base-url",
                 f"http://127.0.0.1:{self.upstream_port}/v1")
        self.cli("connections", "add", "--name", "fake-churn", "--kind", "openai", "--base-url",
                 f"http://127.0.0.1:{self.churn_port}/v1")
        self.cli("connections", "add", "--name", "fake-native", "--kind", "openai", "--base-url",
                 f"http://127.0.0.1:{self.upstream_port}/v1", "--responses-api")
        for model, connection in ((MODEL, "fake"), (CHURN_MODEL, "fake-churn"), (NATIVE_MODEL, "fake-native")):
            self.cli("models", "add", "--id", model, "--connection", connection, "--input-price", "1",
                     "--output-price", "2")
        self.keys["plain"] = json.loads(self.cli("keys", "create", "--name", "bench", "--json"))["key"]
        self.keys["restricted"] = json.loads(self.cli("keys", "create", "--name", "bench-restricted",
                                                      *RESTRICTIONS, "--json"))["key"]
        wait_until_up(self.upstream_port, "/health", self.upstream)
        wait_until_up(self.churn_port, "/health", churn)
        self.server = self._spawn([PFORTE, "serve", "--port", str(self.port)], "server.log")
        wait_until_up(self.port, "/healthz", self.server)
        return self

    def rss_kb(self) -> dict[str, int]:
        return proc_status(self.server.pid) if self.server else {}

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def server_log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.workdir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(line for line in text.splitlines() if "pforte.access" not in line)[-4000:]

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc) -> None:
        self.cleanup()


def chat_body(content: str = "Say hello to the benchmark.", stream: bool = False, model: str = MODEL) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 64}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# --- wrk: plain requests -------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %.1f %.1f %.1f %.1f %.1f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk(port: int, path: str, key: str, body: dict, *, connections: int, seconds: float, workdir: Path,
        threads: int = 1) -> WrkResult:
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(json.dumps(body)), key=key))
    result = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                             "-s", str(script), f"http://127.0.0.1:{port}{path}"],
                            capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"RESULT " + r" ".join([r"(\d+)"] * 8 + [r"([\d.]+)"] * 5), result.stdout)
    if not match:
        raise RuntimeError(f"wrk failed: {result.stdout}\n{result.stderr}")
    values = match.groups()
    count, duration_us, connect, read, write, status, timeout, _bytes = (int(v) for v in values[:8])
    p50, p90, p99, mean, top = (float(v) / 1000 for v in values[8:])
    return WrkResult(count, duration_us / 1e6,
                     {"connect": connect, "read": read, "write": write, "status": status, "timeout": timeout},
                     p50, p90, p99, mean, top)


# --- a small asyncio client for streams ------------------------------------------------------------

class StreamError(Exception):
    pass


@dataclass
class Exchange:
    status: int = 0
    started: float = 0.0
    first_data: float | None = None  # first byte of the response body
    ended: float | None = None
    done: bool = False  # saw the stream's end (`data: [DONE]` or `event: response.completed`)
    chunks: int = 0


class HttpConnection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection that sends a request and parses the (chunked) answer as it
    arrives, noting when the first body byte came and whether the stream's end was in it: `data: [DONE]`
    (chat) or `event: response.completed` (the Responses API)."""

    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.exchange: Exchange | None = None
        self.waiter: asyncio.Future | None = None
        self.state = "idle"
        self.remaining = 0
        self.chunked = False
        self.keep_alive = True
        self.tail = b""
        self.lost = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(StreamError(f"connection lost in state {self.state}"))

    def send(self, data: bytes) -> asyncio.Future:
        self.exchange = Exchange(started=time.perf_counter())
        self.waiter = asyncio.get_running_loop().create_future()
        self.state = "head"
        self.tail = b""
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:
            return
        self.buffer += data
        try:
            self._parse()
        except StreamError as exc:
            if not self.waiter.done():
                self.waiter.set_exception(exc)
            self.transport.close()

    def _body(self, data: bytes) -> None:
        exchange = self.exchange
        if not data:
            return
        if exchange.first_data is None:
            exchange.first_data = time.perf_counter()
        exchange.chunks += 1
        if not exchange.done:
            window = self.tail + data
            if b"data: [DONE]" in window or b"event: response.completed" in window:
                exchange.done = True
            self.tail = window[-32:]

    def _finish(self) -> None:
        self.exchange.ended = time.perf_counter()
        self.state = "idle"
        if not self.keep_alive:
            self.transport.close()
        if not self.waiter.done():
            self.waiter.set_result(self.exchange)

    def _parse(self) -> None:
        buffer = self.buffer
        while True:
            if self.state == "head":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
                del buffer[:end + 4]
                try:
                    self.exchange.status = int(head[0].split(" ", 2)[1])
                except (IndexError, ValueError):
                    raise StreamError(f"bad status line {head[0]!r}") from None
                headers = {}
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip().lower()
                self.chunked = "chunked" in headers.get("transfer-encoding", "")
                self.keep_alive = headers.get("connection") != "close"
                if self.chunked:
                    self.state = "size"
                elif "content-length" in headers:
                    self.remaining = int(headers["content-length"])
                    self.state = "body"
                    if self.remaining == 0:
                        self._finish()
                        return
                else:
                    self.keep_alive = False
                    self.state = "until-close"
            elif self.state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";")[0], 16)
                del buffer[:end + 2]
                if size == 0:
                    self.state = "trailer"
                else:
                    self.remaining = size
                    self.state = "chunk"
            elif self.state == "chunk":
                if len(buffer) < self.remaining + 2:
                    return
                self._body(bytes(buffer[:self.remaining]))
                del buffer[:self.remaining + 2]
                self.state = "size"
            elif self.state == "trailer":
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[:end + 2]
                if end == 0:
                    self._finish()
                    return
            elif self.state == "body":
                take = min(self.remaining, len(buffer))
                self._body(bytes(buffer[:take]))
                del buffer[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self._finish()
                return
            else:  # until-close: body ends with the connection
                self._body(bytes(buffer))
                buffer.clear()
                return


def request_bytes(port: int, path: str, key: str, body: dict) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload


@dataclass
class StreamRun:
    seconds: float = 0.0
    completed: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    peak_open: int = 0

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def record(self, exchange: Exchange) -> None:
        if exchange.status != 200:
            self.error(f"HTTP {exchange.status}")
        elif not exchange.done:
            self.error("no end of stream")
        else:
            self.completed += 1
            self.ttfb_ms.append((exchange.first_data - exchange.started) * 1000)
            self.total_ms.append((exchange.ended - exchange.started) * 1000)


async def _connect(port: int) -> HttpConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(HttpConnection, "127.0.0.1", port)
    return protocol


async def _stream_loop(port: int, data: bytes, deadline: float, run: StreamRun, timeout: float) -> None:
    connection = None
    while time.perf_counter() < deadline:
        try:
            if connection is None or connection.lost or not connection.keep_alive:
                connection = await _connect(port)
            exchange = await asyncio.wait_for(connection.send(data), timeout)
            if time.perf_counter() <= deadline:
                run.record(exchange)
        except (TimeoutError, OSError, StreamError) as exc:
            run.error(type(exc).__name__)
            if connection is not None and connection.transport is not None:
                connection.transport.close()
            connection = None
    if connection is not None and connection.transport is not None:
        connection.transport.close()


def stream_load(port: int, path: str, key: str, body: dict, *, concurrency: int, seconds: float,
                timeout: float = 30.0) -> StreamRun:
    """`concurrency` clients, each streaming one request after another on its own connection."""
    data = request_bytes(port, path, key, body)

    async def main() -> StreamRun:
        run = StreamRun()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_stream_loop(port, data, deadline, run, timeout) for _ in range(concurrency)))
        run.seconds = min(time.perf_counter(), deadline) - started
        return run

    return asyncio.run(main())


def paced_stream_load(port: int, path: str, key: str, body: dict, *, rate: float, concurrency: int,
                      seconds: float, timeout: float = 30.0) -> StreamRun:
    """Streams started at a fixed rate (open loop) over at most `concurrency` kept-alive connections.
    Times count from each stream's scheduled start, so waiting for a free connection is included."""
    data = request_bytes(port, path, key, body)

    async def main() -> StreamRun:
        run = StreamRun()
        idle: list[HttpConnection] = []
        free = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def one(scheduled: float) -> None:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            async with free:
                connection = idle.pop() if idle else None
                try:
                    if connection is None or connection.lost or not connection.keep_alive:
                        connection = await _connect(port)
                    future = connection.send(data)
                    connection.exchange.started = scheduled
                    run.record(await asyncio.wait_for(future, timeout))
                    idle.append(connection)
                except (TimeoutError, OSError, StreamError) as exc:
                    run.error(type(exc).__name__)
                    if connection is not None and connection.transport is not None:
                        connection.transport.close()

        count = int(rate * seconds)
        await asyncio.gather(*(one(started + i / rate) for i in range(count)))
        run.seconds = time.perf_counter() - started
        for connection in idle:
            connection.transport.close()
        return run

    return asyncio.run(main())


def hold_streams(port: int, path: str, key: str, body: dict, *, count: int, ramp_seconds: float,
                 timeout: float, on_tick=None) -> StreamRun:
    """Open `count` long streams, spread over ramp_seconds, and wait for them all; peak_open counts the
    streams that had their first byte and had not ended at the same moment."""
    data = request_bytes(port, path, key, body)
    run = StreamRun()
    open_now = 0

    async def one(delay: float) -> None:
        nonlocal open_now
        await asyncio.sleep(delay)
        connection = None
        counted = False
        try:
            connection = await _connect(port)
            future = connection.send(data)
            end_at = time.perf_counter() + timeout
            while not future.done():
                if connection.exchange.first_data is not None and not counted:
                    counted = True
                    open_now += 1
                    run.peak_open = max(run.peak_open, open_now)
                remaining = end_at - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait([future], timeout=min(0.2, remaining))
            run.record(future.result())
        except (TimeoutError, OSError, StreamError) as exc:
            run.error(type(exc).__name__)
        finally:
            if counted:
                open_now -= 1
            if connection is not None and connection.transport is not None:
                connection.transport.close()

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            if on_tick:
                on_tick(open_now)
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except TimeoutError:
                pass

    async def main() -> StreamRun:
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticker(stop))
        started = time.perf_counter()
        await asyncio.gather(*(one(ramp_seconds * i / count) for i in range(count)))
        run.seconds = time.perf_counter() - started
        stop.set()
        await tick
        return run

    _more_files()
    return asyncio.run(main())


# --- statistics ----------------------------------------------------------------------------------

def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def machine_load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def say(*parts) -> None:
    print(*parts, flush=True)
    sys.stdout.flush()


def responses_body(content: str = "Say hello to the benchmark.", stream: bool = False, model: str = MODEL) -> dict:
    """The Responses API request that matches chat_body()."""
    body = {"model": model, "input": content, "max_output_tokens": 64}
    if stream:
        body["stream"] = True
    return body
