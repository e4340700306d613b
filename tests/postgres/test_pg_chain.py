"""The schema chain on PostgreSQL: every RAGFlow PostgreSQL database (the 9 fresh reference schemas
and the 4 upgrade-chain results) reaches fresh v0.27.0's schema through ``backends.postgres.ddl``
and ``executor.apply_migration``, one transaction per migration; the adoptions of
docs/postgres.md ("PostgreSQL-only states to adopt and repair") keep their rows; a failed
migration leaves nothing behind; lock waits are bounded, named, and retried."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from ragflow_migrate import events
from ragflow_migrate.backends.postgres import ddl, executor
from ragflow_migrate.backends.postgres.introspect import live_snapshot
from ragflow_migrate.backends.postgres.pgform import to_postgres
from ragflow_migrate.errors import StepFailedError
from ragflow_migrate.releases import parse_release
from ragflow_migrate.schema import chain, diff
from ragflow_migrate.schema.operations import CreateTable, Statement
from servers import harness, postgres

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

REFERENCE = harness.schema_root() / postgres.LABEL
TARGET = "v0.27.0"
FRESH = ("v0.20.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")
UPGRADES = ("v0.20.0", "v0.24.0", "v0.25.6", "v0.26.4")

# What stays different from fresh v0.27.0, and why (never a blanket skip):
#: the v0.23.0 evaluation tables: retired by v0.27.0, kept because they may hold data (as on MySQL).
EVALUATION = {("extra_table", f"evaluation_{t}", None) for t in ("cases", "datasets", "results", "runs")}
#: document.meta_fields: retired by v0.24.0, kept with its data (as on MySQL).
META_FIELDS = {("extra_column", "document", "meta_fields")}
#: tenant_model.model_type stays varchar(32): its values are type names, which the data stage
#: model_type_merge turns into the integer bitmask (schema steps skip it, as on MySQL).
MODEL_TYPE = {("column", "tenant_model", "model_type")}

REMAINING = {
    "fresh-v0.20.0": META_FIELDS | MODEL_TYPE,
    "fresh-v0.22.0": META_FIELDS | MODEL_TYPE,
    "fresh-v0.23.0": META_FIELDS | MODEL_TYPE | EVALUATION,
    "fresh-v0.24.0": MODEL_TYPE | EVALUATION,
    "fresh-v0.25.0": MODEL_TYPE | EVALUATION,
    "fresh-v0.25.6": MODEL_TYPE | EVALUATION,
    "fresh-v0.26.0": MODEL_TYPE | EVALUATION,
    "fresh-v0.26.4": MODEL_TYPE | EVALUATION,
    "fresh-v0.27.0": set(),
    "upgrade-v0.20.0-to-v0.27.0": META_FIELDS,
    "upgrade-v0.24.0-to-v0.27.0": EVALUATION,
    "upgrade-v0.25.6-to-v0.27.0": EVALUATION,
    "upgrade-v0.26.4-to-v0.27.0": MODEL_TYPE | EVALUATION,
}
STARTS = [f"fresh-{v}" for v in FRESH] + [f"upgrade-{v}-to-{TARGET}" for v in UPGRADES]


class Log:
    """Records what the executor logs (event, fields)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.records.append((event, fields))

    warning = info

    def events(self, name: str) -> list[dict]:
        return [fields for event, fields in self.records if event == name]


def _operations(migration: chain.Migration) -> list:
    """As the schema step does: a table the target no longer declares is not created."""
    return [op for op in migration.operations if not isinstance(op, CreateTable) or op.needed_for(TARGET)]


def _after(release: str | None) -> list[chain.Migration]:
    return [m for m in chain.replay() if release is None or parse_release(m.release) > parse_release(release)]


def migrate(conn, *, after: str | None = None, log: Log | None = None, lock_wait: float = 5.0) -> int:
    """Every migration of the chain (or those after release ``after``), each one transaction."""
    total = 0
    for m in _after(after):
        found = ddl.migration_statements(_operations(m), to_postgres(m.expected), log=log, step=m.name)
        total += executor.apply_migration(conn, found, log=log, step=m.name, lock_wait=lock_wait)
    return total


def still_needed(conn) -> list[str]:
    live = live_snapshot(conn)
    out = []
    for migration in chain.replay():
        expected = to_postgres(migration.expected)
        for op in _operations(migration):
            out += [f"{migration.name}: {s.sql}" for s in ddl.pending(ddl.statements(op, live, expected), conn)]
    return out


def load(server, database: str, stem: str) -> psycopg.Connection:
    server.load_sql(database, REFERENCE / f"{stem}.sql")
    return server.connect(database)


def differences(expected, live) -> set[tuple]:
    return {(d.kind, d.table, d.name) for d in diff.compare(expected, live)}


@pytest.fixture(scope="module")
def fresh_target(pg_server):
    """The live snapshot of RAGFlow's own fresh v0.27.0 (what every chain must reach)."""
    database = pg_server.create_database("pg_chain_fresh_target")
    try:
        with load(pg_server, database, f"fresh-{TARGET}") as conn:
            yield live_snapshot(conn)
    finally:
        pg_server.drop_database(database)


def _insert_tenant_llm(conn, rows) -> None:
    status = "status" in live_snapshot(conn, tables=["tenant_llm"]).tables["tenant_llm"].columns  # v0.22.0+
    for tenant, factory, name in rows:
        conn.execute("INSERT INTO tenant_llm (tenant_id, llm_factory, llm_name, max_tokens, used_tokens, api_key"
                     + (", status) VALUES (%s, %s, %s, 8, 0, %s, '1')" if status else ") VALUES (%s, %s, %s, 8, 0, %s)"),
                     (tenant, factory, name, f"key-{name}"))


KEYS = [("t2", "OpenAI", "gpt-4"), ("t1", "ZhipuAI", "glm-4"), ("t1", "OpenAI", "gpt-4o"), ("t1", "OpenAI", "gpt-3")]


def _insert_users(conn) -> None:
    users = [  # (id, email, is_superuser, create_time)
        ("aaaaaaaa1111", "a@x.io", False, 100), ("bbbbbbbb2222", "a@x.io", True, 300),
        ("cccccccc3333", "a@x.io", False, 50), ("dddddddd4444", "b@x.io", False, 10),
        ("eeeeeeee5555", "b@x.io", None, 10), ("ffffffff6666", "c@x.io", False, 1),
    ]
    for uid, email, superuser, created in users:
        conn.execute('INSERT INTO "user" (id, nickname, email, is_authenticated, is_active, is_anonymous, '
                     "is_superuser, create_time) VALUES (%s, 'n', %s, '1', '1', '0', %s, %s)",
                     (uid, email, superuser, created))


@pytest.mark.parametrize("release", ["v0.20.0", "v0.24.0"])
def test_composite_key_with_rows_and_duplicate_emails(pg_server, pg_database, release):
    with load(pg_server, pg_database, f"fresh-{release}") as conn:
        _insert_tenant_llm(conn, KEYS)
        _insert_users(conn)
        migrate(conn, after=release)

        rows = conn.execute("SELECT id, tenant_id, llm_factory, llm_name, api_key FROM tenant_llm ORDER BY id").fetchall()
        ordered = sorted(KEYS)  # numbered in the old key's order, as RAGFlow numbers them
        assert rows == [(n + 1, *key, f"key-{key[2]}") for n, key in enumerate(ordered)]
        next_id = conn.execute("INSERT INTO tenant_llm (tenant_id, llm_factory, max_tokens, used_tokens, status) "
                               "VALUES ('t3', 'f', 0, 0, '1') RETURNING id, llm_name").fetchone()
        assert next_id == (len(KEYS) + 1, None)  # the sequence continues; llm_name may be NULL now
        with pytest.raises(psycopg.errors.UniqueViolation):
            _insert_tenant_llm(conn, KEYS[:1])

        # MySQL's rule: per address the superuser, else the oldest account, keeps it
        emails = dict(conn.execute('SELECT id, email FROM "user"').fetchall())
        assert emails == {"aaaaaaaa1111": "a@x.io_DUPLICATE_aaaaaaaa", "bbbbbbbb2222": "a@x.io",
                          "cccccccc3333": "a@x.io_DUPLICATE_cccccccc", "dddddddd4444": "b@x.io",
                          "eeeeeeee5555": "b@x.io_DUPLICATE_eeeeeeee", "ffffffff6666": "c@x.io"}
        assert live_snapshot(conn, tables=["user"]).tables["user"].indexes["user_email"].unique

        # the full btree tenantllm_api_key (v0.20.0) is gone: a long key fits
        conn.execute("UPDATE tenant_llm SET api_key = %s WHERE id = 1", ("k" * 3200,))
        assert conn.execute("SELECT length(api_key) FROM tenant_llm WHERE id = 1").fetchone() == (3200,)
        assert still_needed(conn) == []


def test_adopts_ragflows_own_converter_variant(pg_server, pg_database, fresh_target):
    """RAGFlow v0.25's converter with rows: id last, PK (id), UNIQUE constraint uk_tenant_llm,
    llm_name still NOT NULL. The constraint becomes fresh v0.27.0's plain unique index."""
    with load(pg_server, pg_database, "fresh-v0.24.0") as conn:
        _insert_tenant_llm(conn, KEYS)
        for sql in ("ALTER TABLE tenant_llm ADD COLUMN id serial",
                    "ALTER TABLE tenant_llm DROP CONSTRAINT tenant_llm_pkey, ADD CONSTRAINT tenant_llm_pkey PRIMARY KEY (id),"
                    " ADD CONSTRAINT uk_tenant_llm UNIQUE (tenant_id, llm_factory, llm_name)"):
            conn.execute(sql)
        before = dict(conn.execute("SELECT id, llm_name FROM tenant_llm").fetchall())
        migrate(conn, after="v0.24.0")
        table = live_snapshot(conn, tables=["tenant_llm"]).tables["tenant_llm"]
        assert table == fresh_target.tables["tenant_llm"]
        assert table.indexes["tenantllm_tenant_id_llm_factory_llm_name"].constraint is None
        assert conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'tenant_llm'::regclass").fetchall() \
            == [("tenant_llm_pkey",)]
        assert dict(conn.execute("SELECT id, llm_name FROM tenant_llm").fetchall()) == before


def test_a_failing_migration_leaves_everything_as_it_was(pg_server, pg_database):
    with load(pg_server, pg_database, "fresh-v0.24.0") as conn:
        _insert_tenant_llm(conn, KEYS)
        conn.execute("CREATE TABLE migrated (name text)")
        before = live_snapshot(conn)
        migration = _after("v0.24.0")[0]  # v0.25.0: the surrogate key, unique e-mails, new columns
        found = ddl.migration_statements(_operations(migration), to_postgres(migration.expected))
        failing = Statement("SELECT 1 / 0", "tenant_llm")
        with pytest.raises(psycopg.errors.DivisionByZero):
            executor.apply_migration(conn, [*found, failing],
                                     record=lambda c: c.execute("INSERT INTO migrated VALUES ('006')"))
        assert live_snapshot(conn) == before
        assert conn.execute("SELECT count(*) FROM migrated").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'tenant_llm_id_seq'").fetchone() == (0,)
        # and the same migration, run again without the failure, goes through with its record
        assert executor.apply_migration(conn, found, record=lambda c: c.execute("INSERT INTO migrated VALUES ('006')"))
        assert conn.execute("SELECT count(*) FROM migrated").fetchone() == (1,)


def _hold_tenant(server, database: str) -> psycopg.Connection:
    """Another session with an open transaction that has read ``tenant`` (ACCESS SHARE)."""
    other = server.connect(database)
    other.execute("SET application_name = 'a-ragflow-pod'")
    other.execute("BEGIN")
    other.execute("SELECT count(*) FROM tenant")
    return other


def test_waits_for_a_lock_names_the_holder_and_goes_on_once_released(pg_server, pg_database):
    with load(pg_server, pg_database, "fresh-v0.26.4") as conn:
        other = _hold_tenant(pg_server, pg_database)
        holder = other.info.backend_pid
        release = threading.Timer(1.5, other.execute, ("ROLLBACK",))
        release.start()
        log = Log()
        try:
            started = time.monotonic()
            migrate(conn, after="v0.26.4", log=log, lock_wait=0.3)
        finally:
            release.cancel()
            other.close()
        assert time.monotonic() - started >= 1.0
        waits = log.events(events.STEP_WAITING)
        assert waits and waits[0]["blocker"]  # a later wait may find the holder gone meanwhile (released)
        assert {b["pid"] for b in waits[0]["blocker"]} == {holder}
        assert waits[0]["blocker"][0]["application_name"] == "a-ragflow-pod"
        assert "SELECT count(*) FROM tenant" in waits[0]["blocker"][0]["query"]
        assert live_snapshot(conn, tables=["tenant"]).tables["tenant"].columns["tenant_ocr_id"]


def test_gives_up_after_the_deadline_naming_the_holder(pg_server, pg_database):
    with load(pg_server, pg_database, "fresh-v0.26.4") as conn:
        before = live_snapshot(conn)
        other = _hold_tenant(pg_server, pg_database)
        holder = other.info.backend_pid
        migration = chain.replay()[-1]
        found = ddl.migration_statements(_operations(migration), to_postgres(migration.expected))
        try:
            with pytest.raises(StepFailedError) as failed:
                executor.apply_migration(conn, found, step=migration.name, lock_wait=0.2, deadline=1.0)
        finally:
            other.close()
        assert f"pid {holder}" in failed.value.message
        assert "a-ragflow-pod" in failed.value.message
        assert [b["pid"] for b in failed.value.details["blockers"]] == [holder]
        assert live_snapshot(conn) == before


def test_finishes_a_temp_id_conversion(pg_server, pg_database):
    """RAGFlow's MySQL-style converter stopped with ``temp_id`` as the key: v0.25.0's migration
    renames it to ``id`` and makes it the serial the release declares, rows kept."""
    with load(pg_server, pg_database, "fresh-v0.24.0") as conn:
        _insert_tenant_llm(conn, KEYS)
        conn.execute("ALTER TABLE tenant_llm ADD COLUMN temp_id integer")
        conn.execute("UPDATE tenant_llm t SET temp_id = 20 + n.rn FROM (SELECT llm_name, row_number() OVER "
                     "(ORDER BY llm_name) AS rn FROM tenant_llm) n WHERE n.llm_name = t.llm_name")
        conn.execute("ALTER TABLE tenant_llm DROP CONSTRAINT tenant_llm_pkey, ADD PRIMARY KEY (temp_id)")
        migration = _after("v0.24.0")[0]
        executor.apply_migration(conn, ddl.migration_statements(_operations(migration), to_postgres(migration.expected)))
        table = live_snapshot(conn, tables=["tenant_llm"]).tables["tenant_llm"]
        assert table == to_postgres(migration.expected).tables["tenant_llm"]
        assert conn.execute("SELECT id, llm_name FROM tenant_llm ORDER BY id").fetchall() == \
            [(21 + n, name) for n, name in enumerate(sorted(name for _t, _f, name in KEYS))]
        assert conn.execute("INSERT INTO tenant_llm (tenant_id, llm_factory, max_tokens, used_tokens, status) "
                            "VALUES ('t', 'f', 0, 0, '1') RETURNING id").fetchone() == (21 + len(KEYS),)
