"""DDL beside a live RAGFlow: metadata locks, things the tool does not know, generated migrations."""

from __future__ import annotations

import io
import json
import shutil
import threading

from toolrun import run_tool

from ragflow_migrate import events
from ragflow_migrate.config import load_settings
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.introspect import live_snapshot


def test_ddl_waits_for_a_metadata_lock_names_the_blocker_and_succeeds(database, ragflow_schema, tool):
    database.load_sql(ragflow_schema("v0.24.0"))
    assert tool("run", "--target-version", "v0.24.0").code == 0
    database.query("INSERT INTO document (id, kb_id, parser_id, parser_config, source_type, type, created_by, "
                   "name, size, token_num, chunk_num, progress, process_duration, suffix, run) VALUES "
                   "('d1', 'kb', 'naive', '{}', 'local', 'pdf', 'u', 'n', 1, 0, 0, 0, 0, 'pdf', '0')")
    blocker = database.connect(autocommit=False)
    cur = blocker.cursor()
    cur.execute("START TRANSACTION")
    cur.execute("SELECT COUNT(*) FROM document")  # holds a shared metadata lock until the transaction ends
    cur.execute("SELECT CONNECTION_ID()")
    blocker_id = cur.fetchone()[0]
    threading.Timer(4.0, blocker.commit).start()
    result = tool("run", "--ddl-lock-wait", "1", "--ddl-deadline", "60")
    blocker.close()
    assert result.code == 0, result.stdout
    waits = result.named(events.STEP_WAITING)
    assert waits, "the ALTER on document should have waited"
    assert all("metadata lock on document" in w["reason"] for w in waits)
    seen = {b["connection_id"] for w in waits for b in (w["blocker"] or [])}
    assert blocker_id in seen
    assert any(("transaction_age_s" in b or "seconds" in b) for w in waits for b in (w["blocker"] or []))
    assert database.query("SELECT id, size FROM document") == [("d1", 1)]


def test_ddl_gives_up_at_the_deadline_with_a_clear_error(database, ragflow_schema, tool):
    database.load_sql(ragflow_schema("v0.24.0"))
    blocker = database.connect(autocommit=False)
    cur = blocker.cursor()
    cur.execute("START TRANSACTION")
    cur.execute("SELECT COUNT(*) FROM document")
    try:
        result = tool("run", "--ddl-lock-wait", "1", "--ddl-deadline", "3")
    finally:
        blocker.rollback()
        blocker.close()
    assert result.code == 7
    assert "could not get the metadata lock on document" in result.summary["error"]
    assert tool("run").code == 0  # and the next run finishes the job


def test_unknown_tables_and_columns_are_kept_and_reported(database, ragflow_schema, tool):
    database.load_sql(ragflow_schema("v0.25.6"))
    database.query("CREATE TABLE my_audit (id INT PRIMARY KEY, note VARCHAR(20))")
    database.query("INSERT INTO my_audit VALUES (1, 'keep me')")
    database.query("ALTER TABLE tenant ADD COLUMN my_flag VARCHAR(8) NULL")
    result = tool("run")
    assert result.code == 0, result.stdout
    assert database.query("SELECT * FROM my_audit") == [(1, "keep me")]
    diff = tool("schema", "diff", "--json")
    assert diff.code == 0  # extras are not drift
    kinds = {(d["kind"], d["table"], d["name"]) for d in json.loads(diff.stdout)["differences"]}
    assert ("extra_table", "my_audit", None) in kinds and ("extra_column", "tenant", "my_flag") in kinds
    assert tool("schema", "diff", "--strict").code == 8
    dropped = tool("schema", "apply", "--drop")
    assert dropped.code == 0, dropped.stdout
    tables = database.tables()
    assert "my_audit" not in tables and "evaluation_runs" not in tables
    assert tool("schema", "diff", "--strict").code == 0


def test_schema_diff_reports_drift_with_the_drift_code(database, tool):
    assert tool("run").code == 0
    database.query("ALTER TABLE tenant_llm MODIFY COLUMN api_base VARCHAR(64) NULL")
    database.query("ALTER TABLE document DROP INDEX document_suffix")
    diff = tool("schema", "diff", "--json")
    assert diff.code == 8
    found = {(d["kind"], d["table"], d["name"]) for d in json.loads(diff.stdout)["differences"] if d["drift"]}
    assert found == {("column", "tenant_llm", "api_base"), ("missing_index", "document", "document_suffix")}
    text = tool("schema", "diff")
    assert "DRIFT  column: tenant_llm.api_base (expected varchar(255) NULL, found varchar(64) NULL)" in text.stdout


def test_schema_generate_writes_a_migration_that_adds_a_hand_made_column(database, tool, tmp_path):
    assert tool("run").code == 0
    database.query("ALTER TABLE document ADD COLUMN reviewed_by VARCHAR(64) NULL")
    database.query("ALTER TABLE document ADD INDEX document_reviewed_by (reviewed_by)")
    database.query("ALTER TABLE tenant DROP COLUMN tts_id")
    out = tmp_path / "migrations"
    shutil.copytree(chain.MIGRATIONS_DIR, out, ignore=shutil.ignore_patterns("__pycache__"))
    result = run_tool(database.env, "schema", "generate", "--version", "v0.28.0", "--output", str(out),
                      logs_on="stderr")
    assert result.code == 0, result.stderr
    text = (out / "011_v0_28_0.py").read_text()
    assert "migrator.add_fields('document', reviewed_by=pw.CharField(max_length=64, null=True))" in text
    assert "migrator.retire_fields('tenant', 'tts_id')" in text and "remove_fields" not in text
    out_drop = tmp_path / "migrations-drop"
    shutil.copytree(chain.MIGRATIONS_DIR, out_drop, ignore=shutil.ignore_patterns("__pycache__"))
    dropping = run_tool(database.env, "schema", "generate", "--version", "v0.28.0", "--output", str(out_drop),
                        "--drop", logs_on="stderr")
    assert dropping.code == 0
    assert "migrator.remove_fields('tenant', 'tts_id')" in (out_drop / "011_v0_28_0.py").read_text()

    # Applied after the chain to a fresh v0.27.0 database, the generated migration adds the column.
    fresh = f"gen_{database.name[-40:]}"
    database.server.create_database(fresh)
    try:
        env = database.server.env(fresh)
        assert run_tool(env, "run").code == 0
        _apply_file(out / "011_v0_28_0.py", env)
        conn = database.server.connect(fresh)
        live = live_snapshot(conn, fresh, mariadb=database.server.flavor == "mariadb")
        conn.close()
        assert live.column("document", "reviewed_by").describe() == "varchar(64) NULL"
        assert "document_reviewed_by" in live.tables["document"].indexes
        assert live.column("tenant", "tts_id") is not None  # retired, not dropped
    finally:
        database.server.drop_database(fresh)


def _apply_file(path, env):
    """Run the last migration of ``path``'s folder against a database, as a schema step does."""
    from ragflow_migrate import logs
    from ragflow_migrate.runner import close_context, open_context
    from ragflow_migrate.schema.steps import run_operations

    last = chain.replay(path.parent)[-1]
    assert last.name == path.stem
    # An earlier in-process test may have left the logger writing to a captured, now closed, stream.
    logs.configure(fmt="json", level="info", stream=io.StringIO())
    ctx = open_context(load_settings({}, env), logs.get_logger(), "gen-test", wait=False)
    try:
        run_operations(ctx, "schema v0.28.0", last.operations, last.expected)
    finally:
        close_context(ctx)


def test_new_tables_follow_the_existing_tables_collation(database, ragflow_schema, tool):
    """The database's default collation was changed after RAGFlow made its tables: new tables
    must still match the old ones (a mix breaks joins: RAGFlow's defect D1)."""
    database.load_sql(ragflow_schema("v0.25.6"))
    database.query(f"ALTER DATABASE `{database.name}` COLLATE utf8mb4_general_ci")
    result = tool("run")
    assert result.code == 0, result.stdout
    collations = {row[0] for row in database.query(
        "SELECT DISTINCT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME NOT LIKE 'ragflow\\_migrate\\_%%'", (database.name,))}
    assert collations == {"utf8mb4_unicode_ci"}


def test_a_change_made_after_the_schema_was_read_is_not_an_error(database, ragflow_schema):
    """A killed runner's last DDL can still be running on the server when the next run reads the
    schema (the lock's own session ended at once), and finish after: the next run's CREATE TABLE
    then finds the table there (seen in CI: "Table 'file_commit' already exists", exit 7). The step
    reads the table again and carries on."""
    from ragflow_migrate import logs
    from ragflow_migrate.runner import close_context, open_context
    from ragflow_migrate.schema.operations import CreateTable
    from ragflow_migrate.schema.steps import run_operations

    database.load_sql(ragflow_schema("v0.26.0"))
    migration = next(m for m in chain.replay() if m.name == chain.migration_name("v0.26.4"))
    create = next(op for op in migration.operations if isinstance(op, CreateTable) and op.table == "file_commit")
    logs.configure(fmt="json", level="info", stream=io.StringIO())
    ctx = open_context(load_settings({}, database.env), logs.get_logger(), "stale-read", wait=False)
    try:
        stale = ctx.live_schema()
        # the "killed runner's" CREATE, landing after this run's read
        database.query(create.statements(stale, migration.expected)[0].sql)
        read = ctx.live_schema
        ctx.live_schema = lambda tables=None: stale if tables is None else read(tables=tables)
        run_operations(ctx, "schema v0.26.4", migration.operations, migration.expected)
    finally:
        close_context(ctx)
    assert live_snapshot(database.connect(), database.name).table("file_commit") is not None
    for table in ("file_commit", "file_commit_item"):
        got = database.query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                             "AND TABLE_NAME = %s", (database.name, table))
        assert got == [(1,)] or got == ((1,),), (table, got)
