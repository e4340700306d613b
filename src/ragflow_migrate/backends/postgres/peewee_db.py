"""peewee on top of the runner's psycopg 3 session (peewee-migrate's history model).

``ragflow_migrate/__init__.py`` imports peewee with the PostgreSQL drivers hidden (peewee would
import them at start-up, +90 ms on every MySQL run), so peewee believes psycopg is absent.
:func:`enable_psycopg` hands peewee the driver's names the way its own import would have."""

from __future__ import annotations

from typing import Any

import peewee as pw
import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Json, Jsonb


def enable_psycopg() -> None:
    if pw.psycopg is None:
        pw.psycopg, pw.TransactionStatus, pw.Json_pg3, pw.Jsonb_pg3 = psycopg, TransactionStatus, Json, Jsonb


class SessionDatabase(pw.PostgresqlDatabase):
    """A peewee database bound to one open psycopg connection; it never reconnects and never
    closes it (the runner owns it), and its statements join whatever transaction is open there."""

    def __init__(self, conn: Any, name: str) -> None:
        enable_psycopg()
        super().__init__(name, autoconnect=False, prefer_psycopg3=True)
        self._session = conn
        self.connect()

    def _connect(self) -> Any:
        return self._session

    def _close(self, conn: Any) -> None:
        return None
