"""peewee on top of our own session: peewee-migrate's history model and the migration files
run on the connection the runner opened (strict mode, UTC, our lock), never on a pool."""

from __future__ import annotations

import peewee as pw
import pymysql


class SessionDatabase(pw.MySQLDatabase):
    """A peewee database bound to one existing pymysql connection. It never reconnects and
    never closes the connection: the runner owns it."""

    def __init__(self, conn: pymysql.connections.Connection, name: str) -> None:
        super().__init__(name, autoconnect=False)
        self._session = conn
        self.connect()

    def _connect(self) -> pymysql.connections.Connection:
        return self._session

    def _close(self, conn: pymysql.connections.Connection) -> None:
        return None
