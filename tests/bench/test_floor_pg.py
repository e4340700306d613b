"""The bench on PostgreSQL (``pgcopy.py``, ``floor_pg.py``), at XS from v0.25.6 and from v0.20.0 (7 s each
on an idle machine, 25 s at load 9; ``BENCH_PG_RELEASES=v0.25.6`` picks one):

* the generated rows arrive on PostgreSQL, every table with MariaDB's row count;
* the tool upgrades one copy, the floor another, and their end states match;
* the check is not blind: one changed reference and one changed document are told apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "servers"))

import floor  # noqa: E402
import floor_pg  # noqa: E402
import generate  # noqa: E402
import pgcopy  # noqa: E402

import postgres  # noqa: E402


@pytest.fixture(scope="module")
def pg_bench(mariadb_server):
    """A PostgreSQL 15 with ``.source``, the MariaDB the rows are generated on (as ``pgcopy.servers``)."""
    with postgres.running() as server:
        server.source = mariadb_server
        yield server


RELEASES = [r.strip() for r in (os.environ.get("BENCH_PG_RELEASES") or "v0.25.6,v0.20.0").split(",") if r.strip()]


@pytest.mark.parametrize("release", RELEASES)
def test_floor_ends_where_the_tool_ends_on_postgres(pg_bench, release):
    catalog = generate.DEFAULT_CATALOG
    tool_db = f"bench_{os.getpid()}_{release.replace('.', '_')}"
    floor_db = tool_db + "_floor"
    try:
        gen = pgcopy.generate_case(pg_bench, tool_db, release=release, scale="XS", catalog=catalog, seed=42,
                                   log=lambda _m: None)
        source = pg_bench.source.connect(pgcopy.source_name(tool_db))
        try:
            with source.cursor() as cur:
                for table, count in gen["copy"]["rows"].items():
                    cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                    assert cur.fetchone()[0] == count, table
        finally:
            source.close()
        assert gen["copy"]["rows"]["document"] == gen["rows"]["document"] > 0
        assert pg_bench.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND (tablename LIKE "
                              "'ragflow\\_migrate\\_%' OR tablename = 'migratehistory')", database=tool_db) == [(0,)]
        env = {"PATH": os.environ.get("PATH", ""), **pg_bench.env(tool_db), "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
               "RAGFLOW_MIGRATE_CATALOG": str(catalog), "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull}
        tool = subprocess.run([sys.executable, "-m", "ragflow_migrate", "run"], env=env, capture_output=True,
                              text=True, timeout=300)
        assert tool.returncode == 0, tool.stdout[-3000:] + tool.stderr[-2000:]

        pgcopy.copy_database(pg_bench, floor_db, release=release, source_db=pgcopy.source_name(tool_db),
                             log=lambda _m: None)
        schema = floor.schema_apply(pg_bench.env(floor_db), catalog)
        assert schema.returncode == 0, schema.stdout[-3000:] + schema.stderr[-2000:]
        result = floor_pg.run_floor(pg_bench.env(floor_db), catalog)
        assert [s["step"] for s in result["steps"]] == [f"data {s}" for s in floor.STAGES]
        check = floor_pg.compare(pg_bench.connect, tool_db, floor_db)
        assert check["match"], str({k: check[k] for k in ("differing", "samples")})[:4000]

        with pg_bench.connect(floor_db) as conn:
            conn.execute("UPDATE tenant SET tenant_llm_id = '' WHERE id = (SELECT min(id) FROM tenant "
                         "WHERE tenant_llm_id <> '')")
            conn.execute("UPDATE document SET name = name || '~' WHERE id = (SELECT min(id) FROM document)")
        check = floor_pg.compare(pg_bench.connect, tool_db, floor_db)
        assert check["differing"] == ["table document", "tenant"]
        assert all(len(s["only_tool"]) == len(s["only_floor"]) == 1 for s in check["samples"].values())
    finally:
        for name in (tool_db, floor_db):
            pg_bench.drop_database(name)
        pg_bench.source.drop_database(pgcopy.source_name(tool_db))
