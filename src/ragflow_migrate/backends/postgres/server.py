"""What PostgreSQL server a session reached: version, and whether it takes writes.

:class:`PgServerInfo` has the attribute surface of MySQL's ``dialect.ServerInfo`` that the shared
code reads (``flavor``, ``version``, ``version_text``, ``label``, ``is_mariadb``, ``topology``,
``session_tuning_sql()``, ``algorithms()``, ``supports_rename_index``), so the orchestrator,
reports and ``db.ready`` need no branch on the backend.

The topology is the shared :class:`~ragflow_migrate.db.topology.Topology`: PostgreSQL has no
multi-primary mode this tool has to know (a streaming replica is a read-only standby), so it is
stand-alone, or a read-only replica when ``pg_is_in_recovery()``; a primary whose
``default_transaction_read_only`` is on is stand-alone and read-only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg

from ...db.topology import REPLICA, STANDALONE, Topology
from .connect import query

_IDENTIFY_SQL = ("SELECT current_setting('server_version_num')::int, current_setting('server_version'), "
                 "pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on'")


def version_tuple(version_num: int) -> tuple[int, ...]:
    """``server_version_num`` as a tuple: 150020 -> (15, 20); before 10, 90624 -> (9, 6, 24)."""
    if version_num >= 100000:
        return (version_num // 10000, version_num % 10000)
    return (version_num // 10000, version_num // 100 % 100, version_num % 100)


@dataclasses.dataclass(frozen=True)
class PgServerInfo:
    version: tuple[int, ...]
    version_text: str  # server_version: "15.20 (Debian 15.20-0+deb12u1)"
    topology: Any = dataclasses.field(default_factory=Topology, compare=False)
    flavor: str = "postgresql"

    @property
    def is_mariadb(self) -> bool:
        return False

    @property
    def label(self) -> str:
        return f"PostgreSQL {'.'.join(map(str, self.version))}"

    @property
    def read_only(self) -> bool:
        return bool(self.topology.read_only)

    def algorithms(self, operation: str) -> tuple[str, ...]:
        """MySQL's ALTER TABLE algorithms do not exist here: every statement runs as written."""
        return ("DEFAULT",)

    def session_tuning_sql(self) -> str | None:
        return None

    @property
    def supports_rename_index(self) -> bool:
        return True  # ALTER INDEX ... RENAME TO, every supported release


def identify(conn: psycopg.Connection) -> PgServerInfo:
    """The server behind ``conn`` (one query, any role may run it)."""
    (version_num, version_text, in_recovery, default_read_only), = query(conn, _IDENTIFY_SQL)
    if in_recovery:
        topology = Topology(kind=REPLICA, read_only=True)
    else:
        topology = Topology(kind=STANDALONE, read_only=bool(default_read_only))
    return PgServerInfo(version_tuple(int(version_num)), str(version_text), topology)
