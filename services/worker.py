"""The worker: every background duty of a ledger in one process kind, each leader-elected.

`consent-ledger worker [--duties projector,log,expiry,relay]` runs one thread per duty.
Each thread holds the duty's lease (`services.leases`) or waits as a stand-by, trying
again every `poll_seconds` (well under a second: takeover is that plus the time the
server takes to end a dead holder's session); the leader asks its lease before every
batch it commits (fencing), so a process that lost its session stops writing at once.
Duties:

- `projector`: the read models (`projections.runner.Projector`);
- `log`: the Merkle log's catch-up and its signed checkpoints, every
  `LEDGER_CHECKPOINT_EVERY_EVENTS` events or `LEDGER_CHECKPOINT_EVERY_SECONDS` seconds;
- `expiry`: `ConsentExpired` for grants whose expiry passed (`projections.expiry`);
- `relay`: the Kafka relay, only when `KAFKA_BOOTSTRAP_SERVERS` is set.

A later duty plugs in with one line: `DUTIES["name"] = factory`, a function from the
services to a `Duty` (or None when the deployment does not configure it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import structlog
from eventsourcing.persistence import InterfaceError, OperationalError

from ledger.errors import InvalidInputError, LedgerError
from projections.expiry import ExpiryScheduler
from projections.runner import Guard, Projector

if TYPE_CHECKING:
    from services.bootstrap import Services

MAX_BACKOFF_SECONDS: Final = 5.0
_log = structlog.get_logger("services.worker")

Fence = Guard  # asked before each batch: does this process still hold the duty's lease?


@dataclass
class Duty:
    """One background duty: `step` does at most a few fenced batches and tells if it did work."""

    name: str
    step: Callable[[Fence], bool]
    poll_seconds: float = 0.1  # wait between steps that found nothing to do
    close: Callable[[], None] = field(default=lambda: None)


DutyFactory = Callable[["Services"], "Duty | None"]


def projector_duty(services: Services) -> Duty:
    """Keep the read models caught up with the ledger."""
    projector = Projector(services.ledger, services.projector.model)

    def step(fence: Fence) -> bool:
        before = projector.position()
        return projector.catch_up(guard=fence) != before

    return Duty("projector", step, poll_seconds=0.1)


def log_duty(services: Services) -> Duty:
    """Keep the Merkle log caught up and sign checkpoints as the policy asks."""

    def step(fence: Fence) -> bool:
        return services.log.catch_up(guard=fence) > 0

    return Duty("log", step, poll_seconds=0.25)


def expiry_duty(services: Services) -> Duty:
    """Record `ConsentExpired` for grants whose expiry passed."""
    scheduler = ExpiryScheduler(services.ledger, services.projector.model, services.ledger.clock)

    def step(fence: Fence) -> bool:
        return fence() and scheduler.run_due() > 0

    return Duty("expiry", step, poll_seconds=1.0)


def relay_duty(services: Services) -> Duty | None:
    """Publish the ledger to Kafka, when a broker is configured."""
    if not services.settings.kafka_bootstrap_servers:
        return None
    from services.entrypoints import relay_batches

    publish_batch, poll_seconds, close = relay_batches(services)

    def step(fence: Fence) -> bool:
        return fence() and publish_batch() > 0

    return Duty("relay", step, poll_seconds=poll_seconds, close=close)


DUTIES: dict[str, DutyFactory] = {
    "projector": projector_duty,
    "log": log_duty,
    "expiry": expiry_duty,
    "relay": relay_duty,
}
"""Every duty a worker can run, by name; a new duty is one more entry."""


def parse_duties(text: str | None) -> list[str]:
    """Return the duty names of `--duties a,b` (all registered duties when None).

    Raises InvalidInputError naming an unknown duty.
    """
    if text is None:
        return list(DUTIES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DUTIES]
    if unknown or not names:
        raise InvalidInputError(
            f"--duties {text!r}: unknown duty {', '.join(unknown) or '(none)'}; "
            f"known duties: {', '.join(DUTIES)}"
        )
    return names


class Worker:
    """Run the chosen duties of one ledger, one thread each, until stopped."""

    def __init__(self, services: Services, duties: Sequence[str]) -> None:
        self.services = services
        self.names = list(duties)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> list[str]:
        """Start a thread for every configured duty; return the names started."""
        started = []
        for name in self.names:
            duty = DUTIES[name](self.services)
            if duty is None:
                _log.info("duty_not_configured", duty=name)
                continue
            thread = threading.Thread(
                target=self._run, args=(duty,), name=f"duty-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
            started.append(name)
        return started

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every duty to stop after its batch in hand, and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _run(self, duty: Duty) -> None:
        lease = self.services.leases.lease(duty.name)
        backoff = duty.poll_seconds
        waiting = False  # logged once per stand-by spell
        try:
            while not self._stop.is_set():
                try:
                    leading = lease.held()
                    if not leading and not waiting:
                        _log.info("duty_standby", duty=duty.name)
                    waiting = not leading
                    worked = leading and duty.step(lease.held)
                    backoff = duty.poll_seconds
                except (OperationalError, InterfaceError, LedgerError) as error:
                    detail = getattr(error, "detail", str(error))
                    _log.warning("duty_failed", duty=duty.name, error=detail)
                    backoff = min(max(backoff, 0.1) * 2, MAX_BACKOFF_SECONDS)
                    self._stop.wait(backoff)
                    continue
                if not worked:
                    self._stop.wait(max(duty.poll_seconds, 0.05))
        finally:
            lease.release()
            duty.close()
