"""Connection providers: how repositories get a psycopg 3 connection.

Repositories call :meth:`ConnectionProvider.run` with a function of a connection. Two providers:

* :class:`LambdaConnection`: one connection per Lambda container, opened lazily on first use and
  reused across invocations (a pool is pointless with one request at a time per container, and
  each new connection costs a TLS handshake plus Aurora's per-connection memory).
* :class:`PooledConnection`: a ``psycopg_pool.ConnectionPool`` for the long-running streamer,
  whose threads write concurrently.

Both hand out *autocommit* connections and repositories open explicit transactions where they need
several statements. Autocommit matters in Lambda: a container is frozen between invocations, and a
connection left "idle in transaction" by a read would hold its snapshot and locks while frozen.

Reconnect-once: a frozen container's connection is often dead on thaw (server restart, Aurora
scaling, idle timeout, ``pg_terminate_backend``). When the connection turns out broken, the call is
retried once on a fresh connection. A retry may repeat a write whose commit was lost with the
connection; that is safe because every write in the store is idempotent on a natural key. Errors on
a healthy connection (statement timeout, constraint violations) are never retried.

Passwords: both providers take an optional ``password`` callable, called for every new connection
(never cached). In AWS it returns a fresh RDS IAM auth token (:mod:`desk.aws.rds_auth`), valid for
15 minutes, which is why it cannot be fixed in the URL: a container or pool lives far longer.

Every session gets ``statement_timeout`` (a runaway query must not outlive the Lambda timeout),
``idle_in_transaction_session_timeout``, ``TimeZone=UTC`` and, when given, ``search_path``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

__all__ = ["ConnectionProvider", "LambdaConnection", "PasswordSource", "PooledConnection", "SessionSettings"]

T = TypeVar("T")
Connection = psycopg.Connection[Any]
PasswordSource = Callable[[], str]
_log = logging.getLogger(__name__)


class ConnectionProvider(Protocol):
    def run(self, work: Callable[[Connection], T]) -> T:
        """Call ``work`` with an autocommit connection; retried once if the connection was broken."""
        ...

    def close(self) -> None: ...


class SessionSettings:
    """Per-session settings applied right after connecting (the same for both providers)."""

    def __init__(
        self,
        *,
        statement_timeout_ms: int = 10_000,
        idle_in_transaction_timeout_ms: int = 30_000,
        search_path: str | None = None,
        application_name: str = "lambda-desk",
    ) -> None:
        self.statement_timeout_ms = statement_timeout_ms
        self.idle_in_transaction_timeout_ms = idle_in_transaction_timeout_ms
        self.search_path = search_path
        self.application_name = application_name

    def apply(self, conn: Connection) -> None:
        settings: dict[str, str] = {
            "statement_timeout": str(self.statement_timeout_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_timeout_ms),
            "TimeZone": "UTC",
            "application_name": self.application_name,
        }
        if self.search_path is not None:
            settings["search_path"] = sql.Identifier(self.search_path).as_string(conn)
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def _is_broken(conn: Connection | None, exc: BaseException) -> bool:
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    if isinstance(exc, psycopg.errors.QueryCanceled):  # statement timeout: the connection is fine
        return False
    return conn is None or conn.closed or conn.broken


class LambdaConnection:
    """One lazily opened connection per container, reused across invocations; reconnects once.

    Build it behind a cached factory (``functools.cache``) in the handler module so it survives
    between invocations but is not opened at import time. Calls are serialised by a lock: Lambda runs
    one invocation at a time, but the local cloud runs concurrent executions' tasks on threads of one
    process, and a psycopg connection must not interleave two threads' transactions.
    """

    def __init__(
        self,
        conninfo: str,
        settings: SessionSettings | None = None,
        connect_timeout: int = 5,
        *,
        password: PasswordSource | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._settings = settings or SessionSettings()
        self._connect_timeout = connect_timeout
        self._password = password
        self._conn: Connection | None = None
        self._lock = threading.RLock()  # re-entrant: a unit of work may call back into the store

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            extra: dict[str, Any] = {} if self._password is None else {"password": self._password()}
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=self._connect_timeout, **extra)
            self._settings.apply(conn)
            self._conn = conn
        return self._conn

    def run(self, work: Callable[[Connection], T]) -> T:
        with self._lock:
            conn = self._connection()
            try:
                return work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not _is_broken(conn, exc):
                    raise
                _log.warning("database connection lost (%s); reconnecting once", exc)
                self.close()
            return work(self._connection())

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the open connection (for diagnostics), ``None`` if not open."""
        return None if self._conn is None or self._conn.closed else self._conn.info.backend_pid

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PooledConnection:
    """A ``ConnectionPool`` for long-running processes (the streamer); opened on construction."""

    def __init__(
        self,
        conninfo: str,
        settings: SessionSettings | None = None,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 10.0,
        name: str = "desk-store",
        password: PasswordSource | None = None,
    ) -> None:
        session = settings or SessionSettings()

        def connect_kwargs() -> dict[str, Any]:  # called by the pool for every new connection
            return {"autocommit": True} if password is None else {"autocommit": True, "password": password()}

        self._pool: ConnectionPool[Connection] = ConnectionPool(
            conninfo,
            kwargs=connect_kwargs,
            configure=session.apply,
            # Checked on checkout: a connection killed while idle in the pool is replaced before use.
            check=ConnectionPool.check_connection,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name=name,
            open=True,
        )

    def run(self, work: Callable[[Connection], T]) -> T:
        for attempt in (1, 2):
            with self._pool.connection() as conn:
                try:
                    return work(conn)
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    if attempt == 2 or not _is_broken(conn, exc):
                        raise
                    # Leaving the block hands the broken connection back; the pool discards it.
                    _log.warning("pooled connection lost (%s); retrying once", exc)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        self._pool.close()
