"""One asyncio task per enabled account, kept in step with the configuration.

Each task loops: fetch a round, wait for news (IDLE, or the poll interval), again. With
IDLE, new mail wakes the task at once, and the poll interval still ends each IDLE as a
re-check: aioimaplib drops the EXISTS a server sends outside IDLE, so mail that arrives
during a round is seen at the latest one interval later.

On an error the task logs it, drops the connection and waits with exponential backoff and
jitter before reconnecting; an account's failure never reaches another account's task. A
task stops only when it is cancelled: its account was removed or disabled, its settings
changed (it is restarted with the new ones) or the service stops.

The backoff is written out rather than taken from tenacity: the task's loop is the retry
loop already (fetch, wait, fetch), and the delay is one expression over a failure count.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from services.fetcher.deps import FetcherDeps
from services.fetcher.health import record_round
from services.fetcher.ingest import fetch_once
from shared import metrics
from shared.broker import publish
from shared.errors import MailroomError, Permanent
from shared.logs import log_context
from shared.mailbox import Mailbox, open_mailbox
from shared.models.config import IncomingAccount, SystemConfig
from shared.models.messages import AccountFailing
from shared.retry import RetrySettings, StagePolicy
from shared.topology import ACCOUNT_FAILING

log = logging.getLogger(__name__)

AccountMailboxes = Callable[[IncomingAccount, float], Mailbox]
FetchRound = Callable[[FetcherDeps, IncomingAccount, Mailbox], Awaitable[int]]


def account_mailbox(deps: FetcherDeps) -> AccountMailboxes:
    """The production mailbox factory: the adapter of the account's protocol (the mailbox
    registry), with the tokens of a named credential read through ``deps``."""

    def make(account: IncomingAccount, timeout: float) -> Mailbox:
        return open_mailbox(
            account,
            timeout=timeout,
            credentials=deps.credentials(),
            on_refused=deps.on_refused,
        )

    return make


@dataclass(frozen=True)
class AccountSpec:
    """Everything a running task was started with; a change means a restart."""

    account: IncomingAccount
    timeout: float
    debug: bool = False
    """The account's debug switch with ``inherit`` resolved: trace its protocol."""


@dataclass(frozen=True)
class Plan:
    """What a reconcile does, by account name."""

    start: frozenset[str] = frozenset()
    stop: frozenset[str] = frozenset()
    restart: frozenset[str] = frozenset()


def wanted_specs(config: SystemConfig) -> dict[str, AccountSpec]:
    """The tasks a configuration asks for: one per enabled account."""
    timeout = config.settings.connect_timeout_seconds
    debug = config.settings.debug_protocol
    return {
        name: AccountSpec(account, timeout, account.debugs(debug))
        for name, account in config.accounts.items()
        if account.enabled
    }


def plan(running: Mapping[str, AccountSpec], wanted: Mapping[str, AccountSpec]) -> Plan:
    """Start what is new, stop what is gone or disabled, restart what changed."""
    return Plan(
        start=frozenset(wanted.keys() - running.keys()),
        stop=frozenset(running.keys() - wanted.keys()),
        restart=frozenset(n for n in running.keys() & wanted.keys() if running[n] != wanted[n]),
    )


@dataclass(frozen=True)
class Backoff:
    """The fetcher stage of the one retry policy (``shared.retry``, ``MAILROOM_RETRY_FETCHER__*``)
    with jitter: attempt n waits base * 2**(n-1), capped, times a random factor in
    [1 - jitter, 1] so that accounts failing together spread out. Reconnecting goes on
    without limit; the administrators are notified after ``fetch_retries`` failures."""

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.5

    @classmethod
    def of(cls, policy: StagePolicy) -> Backoff:
        """The backoff of a stage's policy."""
        return cls(base=policy.first_delay_s, cap=policy.cap_s)

    def delay(self, failures: int, *, permanent: bool = False) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1-based).

        A permanent error (wrong password, untrusted certificate) will not pass by itself:
        it waits the cap at once. A configuration change restarts the task anyway.
        """
        policy = StagePolicy(first_delay_s=self.base, cap_s=self.cap)
        ceiling = self.cap if permanent else policy.delay(failures)
        return ceiling * random.uniform(1.0 - self.jitter, 1.0)


class Supervisor:
    """Keeps one fetch task per enabled account; inert until :meth:`start`."""

    def __init__(
        self,
        deps: FetcherDeps,
        *,
        mailbox_factory: AccountMailboxes | None = None,
        fetch: FetchRound = fetch_once,
        backoff: Backoff | None = None,
    ) -> None:
        self._deps = deps
        self._mailbox_factory = mailbox_factory or account_mailbox(deps)
        self._fetch = fetch
        self._backoff = backoff or Backoff.of(RetrySettings().fetcher)
        self._tasks: dict[str, tuple[AccountSpec, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()
        self._active = False

    @property
    def running(self) -> dict[str, AccountSpec]:
        """The spec of every live task, by account name."""
        return {name: spec for name, (spec, task) in self._tasks.items() if not task.done()}

    async def start(self, config: SystemConfig | None = None) -> None:
        """Start a task for every enabled account of ``config`` (default: the current one)."""
        self._active = True
        await self.reconcile(config or self._deps.config())

    async def stop(self) -> None:
        """Cancel every task and wait until each has closed its connection."""
        async with self._lock:
            self._active = False
            await self._cancel(list(self._tasks))

    async def reconcile(self, config: SystemConfig) -> None:
        """Bring the tasks in line with ``config`` (called after every reload)."""
        async with self._lock:
            if not self._active:
                return
            wanted = wanted_specs(config)
            decision = plan(self.running, wanted)
            await self._cancel(sorted(decision.stop | decision.restart))
            for name in sorted(decision.restart | decision.start):
                self._spawn(wanted[name])
            if decision.start or decision.stop or decision.restart:
                log.info(
                    "fetch tasks: started %s, stopped %s, restarted %s",
                    sorted(decision.start),
                    sorted(decision.stop),
                    sorted(decision.restart),
                    extra={
                        "started": sorted(decision.start),
                        "stopped": sorted(decision.stop),
                        "restarted": sorted(decision.restart),
                    },
                )

    def _spawn(self, spec: AccountSpec) -> None:
        name = spec.account.name
        # The task copies the context now: every line it logs names its account.
        with log_context(account=name):
            task = asyncio.create_task(self._run(spec), name=f"fetch:{name}")
        self._tasks[name] = (spec, task)

    async def _cancel(self, names: list[str]) -> None:
        tasks = [self._tasks.pop(name)[1] for name in names if name in self._tasks]
        for task in tasks:
            task.cancel()
        # Each task closes its connection on the way out; wait for that.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, spec: AccountSpec) -> None:
        # The mailbox knows no global settings: it gets the debug switch resolved.
        account = spec.account.model_copy(update={"debug": "yes" if spec.debug else "no"})
        mailbox = self._mailbox_factory(account, spec.timeout)
        failures = 0
        try:
            while True:
                try:
                    await self._fetch(self._deps, account, mailbox)
                    await record_round(self._deps, account.name, mailbox, None, 0)
                    if failures:
                        log.info(
                            "account %s recovered", account.name, extra={"account": account.name}
                        )
                    failures = 0
                    metrics.fetch_recovered(account.name)
                    default = self._deps.config().settings.poll_interval_seconds
                    await mailbox.wait_for_news(account.polls_every(default))
                except Exception as exc:
                    failures += 1
                    metrics.fetch_failed(account.name, failures)
                    await mailbox.close()
                    await record_round(self._deps, account.name, mailbox, exc, failures)
                    delay = self._failed(account, exc, failures)
                    if failures == self._deps.config().settings.fetch_retries + 1:
                        await self._notify_failing(account, exc, failures)
                    await asyncio.sleep(delay)
        finally:
            await mailbox.close()

    async def _notify_failing(
        self, account: IncomingAccount, exc: Exception, failures: int
    ) -> None:
        """Publish ``account.failing`` once per streak (the sender mails the error notice).

        Best effort: a broker that is down must not stop the account from retrying.
        """
        event = AccountFailing(
            account=account.name, error=str(exc) or type(exc).__name__, failures=failures
        )
        try:
            await publish(self._deps.publisher, event, routing_key=ACCOUNT_FAILING)
        except Exception as error:
            log.warning(
                "could not announce that account %s is failing: %s",
                account.name,
                type(error).__name__,
                extra={"account": account.name},
            )

    def _failed(self, account: IncomingAccount, exc: Exception, failures: int) -> float:
        """Log a failed round; return the seconds to wait before the next one."""
        delay = self._backoff.delay(failures, permanent=isinstance(exc, Permanent))
        error = str(exc) or type(exc).__name__
        extra = {"account": account.name, "error": error, "failures": failures}
        args = (account.name, failures, error, delay)
        if not isinstance(exc, MailroomError):
            log.exception(
                "fetching %s failed unexpectedly (%d in a row): %s; retrying in %.1f s",
                *args,
                extra=extra,
            )
        elif failures == self._deps.config().settings.fetch_retries + 1:
            log.error(
                "account %s is failing (%d in a row): %s; retrying in %.1f s", *args, extra=extra
            )
        else:
            log.warning(
                "fetching %s failed (%d in a row): %s; retrying in %.1f s", *args, extra=extra
            )
        return delay
