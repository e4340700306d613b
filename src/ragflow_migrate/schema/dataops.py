"""The few row updates RAGFlow's own startup performs as part of a schema change.

Each is set-based, batched (a bounded transaction per batch) and idempotent: it changes only
rows that still need it, so a re-run after a kill finishes the job.
"""

from __future__ import annotations

import dataclasses

from ..db import connect as db
from ..db.dialect import quote
from ..steps import RunContext
from .operations import Operation, Statement, render_literal
from .snapshot import Snapshot


@dataclasses.dataclass
class RenameValues(Operation):
    """``UPDATE table SET column = new WHERE column = old``, in batches.

    RAGFlow v0.27 renames model types at every start: ``speech2text`` → ``asr`` and
    ``image2text`` → ``vision`` in ``llm`` and ``tenant_llm``.
    """

    table: str
    column: str
    renames: tuple[tuple[str, str], ...]
    batch: int = 10000

    def apply_to(self, expected: Snapshot) -> None:
        return None

    def _sql(self, old: str, new: str) -> str:
        return (f"UPDATE {quote(self.table)} SET {quote(self.column)} = {render_literal(new)} "
                f"WHERE {quote(self.column)} = {render_literal(old)}")

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        if live.column(self.table, self.column) is None:
            return []
        return [Statement(self._sql(old, new), self.table, run=self._runner(old, new), needed=self._needed(old))
                for old, new in self.renames]

    def _needed(self, old: str):
        def needed(ctx: RunContext) -> bool:
            return db.query_one(ctx.conn, f"SELECT 1 FROM {quote(self.table)} WHERE {quote(self.column)} = %s "
                                "LIMIT 1", (old,)) is not None
        return needed

    def _runner(self, old: str, new: str):
        def run(ctx: RunContext) -> int:
            total = 0
            sql = (f"UPDATE {quote(self.table)} SET {quote(self.column)} = %s "
                   f"WHERE {quote(self.column)} = %s LIMIT {int(self.batch)}")
            while True:
                changed = db.execute(ctx.conn, sql, (new, old))
                total += changed
                if changed < self.batch:
                    return total
                ctx.checkpoint()
        return run

    def describe(self) -> str:
        return f"rename values of {self.table}.{self.column}: " + ", ".join(f"{a}→{b}" for a, b in self.renames)


@dataclasses.dataclass
class DeduplicateUserEmails(Operation):
    """Make ``user.email`` unique before its UNIQUE index is created (RAGFlow v0.25).

    As RAGFlow does: per e-mail address (compared as the index will compare it), the superuser
    (else the oldest account) keeps it; every other account's address becomes
    ``<email>_DUPLICATE_<first 8 characters of the user id>``. One statement, so all or nothing.
    """

    table: str = "user"

    def apply_to(self, expected: Snapshot) -> None:
        return None

    SQL = (
        "UPDATE `user` u JOIN ("
        " SELECT id, email, ROW_NUMBER() OVER (PARTITION BY email ORDER BY is_superuser DESC, create_time, id) AS rn"
        " FROM `user` WHERE email IN (SELECT email FROM `user` GROUP BY email HAVING COUNT(*) > 1)"
        ") d ON d.id = u.id AND d.rn > 1 "
        "SET u.email = CONCAT(d.email, '_DUPLICATE_', LEFT(u.id, 8))"
    )

    def statements(self, live: Snapshot, expected: Snapshot) -> list[Statement]:
        table = live.table(self.table)
        if table is None or "email" not in table.columns:
            return []
        if any(i.unique and i.column_names == ("email",) for i in table.indexes.values()):
            return []  # already unique: nothing can be duplicated
        return [Statement(self.SQL, self.table, run=self._run, needed=self._needed)]

    @staticmethod
    def _needed(ctx: RunContext) -> bool:
        return db.query_one(ctx.conn, "SELECT 1 FROM `user` GROUP BY email HAVING COUNT(*) > 1 LIMIT 1") is not None

    def _run(self, ctx: RunContext) -> int:
        changed = db.execute(ctx.conn, self.SQL)
        if changed:
            ctx.notice("schema", f"renamed {changed} duplicate user e-mail address(es) to "
                       "<email>_DUPLICATE_<id> so that user.email can be unique", count=changed)
        return changed

    def describe(self) -> str:
        return "rename duplicate user e-mail addresses"
