"""The bench's floor and its report (``floor.py``, ``report.py``, ``run.py``'s catalogue choice).

* the floor's catalogue rows are what seeding and the merge make of the catalogue (checked
  against the tool's own reading of it), for the bench's catalogue and RAGFlow's;
* ``--catalog`` picks RAGFlow's catalogue in the shared folder by default;
* the report puts tool and floor side by side per stage, with the issue's targets, and still
  renders a result without a floor (older runs);
* on each server (XS, v0.25.6), the floor ends exactly where the tool ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "servers"))

import floor  # noqa: E402
import generate  # noqa: E402
import harness  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402

from ragflow_migrate.data import catalog as tool_catalog  # noqa: E402

RAGFLOW_CATALOG = harness.shared_root() / "ragflow-data" / run.RAGFLOW_CATALOG


def _catalogues() -> list[Path]:
    return [generate.DEFAULT_CATALOG] + ([RAGFLOW_CATALOG] if RAGFLOW_CATALOG.is_file() else [])


@pytest.mark.parametrize("path", _catalogues(), ids=lambda p: p.name)
def test_floor_catalogue_rows_are_what_seeding_and_the_merge_make(path):
    rows = floor.catalog_rows(json.loads(path.read_text(encoding="utf-8")))
    expected: dict[tuple[str, str], list] = {}
    for seed in tool_catalog.load_catalog(path).seed_rows():
        if seed.intl:
            continue  # siliconflow_intl: only instances whose extra says region intl (none in the bench)
        entry = expected.setdefault((seed.provider_name, seed.llm_name), [0, seed.extra])
        entry[0] |= seed.bit
    assert {(f, m): [bits, extra] for f, m, bits, extra, _ord in rows} == expected
    assert [r[4] for r in rows] == list(range(len(rows)))
    assert len({(f, m) for f, m, *_ in rows}) == len(rows)


def test_catalogue_choice():
    assert run.resolve_catalog(None) == RAGFLOW_CATALOG
    assert run.resolve_catalog("ragflow") == RAGFLOW_CATALOG
    assert run.resolve_catalog("bench") == generate.DEFAULT_CATALOG
    assert run.resolve_catalog("/tmp/x.json") == Path("/tmp/x.json")


def _case(server: str, scale: str, tool: dict[str, float], low: dict[str, float] | None, *, match: bool = True,
          frm: str = "v0.25.6") -> dict:
    steps = [{"step": "schema v0.26.0", "kind": "schema", "duration_s": 1.0}]
    steps += [{"step": f"data {name}", "kind": "data", "duration_s": s} for name, s in tool.items()]
    case = {"server": server, "server_version": "x", "scale": scale, "from": frm, "steps": steps,
            "schema_s": 1.0, "data_s": round(sum(tool.values()), 3), "verify_s": 0.1, "wall_s": sum(tool.values()) + 1.5,
            "preflight_s": 0.1, "peak_rss_mb": 60.0, "noop": {"median_s": 0.2, "peak_rss_mb": 40.0},
            "statements": {"slowest": [], "copy": [], "big_table_ddl": []}, "tenant_llm_rows": 100_034,
            "size_mb": 600.0, "generate": {"seconds": 10.0}}
    if low is not None:
        case["floor"] = {"steps": [{"step": f"data {n}", "duration_s": s} for n, s in low.items()],
                         "data_s": round(sum(low.values()), 3), "schema_s": 0.9, "match": match,
                         "differing": [] if match else ["tenant_model"]}
    return case


STAGES = ("tenant_model_provider", "tenant_model_instance", "tenant_model", "model_id_config", "tenant_model_seeding",
          "model_type_merge", "tenant_model_id_migration")


def test_report_sets_tool_and_floor_side_by_side_with_the_targets():
    tool = dict(zip(STAGES, (0.5, 4.0, 1.5, 3.0, 0.3, 20.0, 10.0), strict=True))
    low = dict(zip(STAGES, (0.4, 1.5, 1.2, 2.0, 0.0, 14.0, 9.0), strict=True))
    mysql_low = {k: 2 * v for k, v in low.items()}
    result = {"started": "now", "machine": {"cores": 2}, "servers": {"mariadb-10.11": "10.11"},
              "settings": {"buffer_pool": "512M", "catalog": str(RAGFLOW_CATALOG)},
              "cases": [_case("mariadb-10.11", "M", tool, low), _case("mysql-9.7", "M", tool, mysql_low, match=False),
                        _case("mariadb-10.11", "S", tool, None)]}
    text = report.finish(result)
    assert "| data model_type_merge | 20.00 / 14.00 = 1.4x |" in text
    assert "| seeding + merge | 20.30 / 14.00 = 1.4x |" in text
    assert "| **data stages** | 39.30 / 28.10 = 1.4x |" in text
    assert "RAGFlow's own path" in text and "579.6" in text and "| data model_id_config | 50.4 | 3.00 | 17x |" in text
    assert "| data tenant_model_instance | 2.0 | 4.00 | 0.5x |" in text
    targets = {t["target"]: t for t in result["targets"]}
    assert targets["M mariadb: data stages vs the floor"]["met"] is True
    assert targets["M mariadb: data stages"]["met"] is False  # 39.3 s > 11 s
    assert "= 22.0 s" in targets["M mysql: data stages"]["limit"]  # 11 s x (56.2 / 28.1)
    assert targets["the floor's end state equals the tool's"]["met"] is False
    assert targets["peak RSS of the tool"]["limit"] == "<= 100 MB"
    assert report.m_data_limit(result["cases"], result["cases"][0]) == 11.0


def test_report_renders_a_run_without_floor():
    result = {"started": "then", "machine": {}, "servers": {}, "settings": {"buffer_pool": "512M"},
              "cases": [_case("mariadb-10.11", "S", dict.fromkeys(STAGES, 0.1), None)]}
    text = report.finish(result)
    assert "Tool vs floor" not in text
    assert "no MariaDB M v0.25.6 case" in text


def test_floor_ends_where_the_tool_ends(database):
    """XS at v0.25.6: the tool upgrades one copy, the floor another (same seed); the end states match."""
    catalog = generate.DEFAULT_CATALOG
    floor_db = database.name[:56] + "_floor"
    database.server.create_database(floor_db)
    try:
        generate.generate(database.env, release="v0.25.6", scale="XS", catalog=catalog, log=lambda _m: None)
        env = {**database.env, "MYSQL_DBNAME": floor_db}
        generate.generate(env, release="v0.25.6", scale="XS", catalog=catalog, log=lambda _m: None)
        full = {"PATH": os.environ.get("PATH", ""), **database.env, "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
                "RAGFLOW_MIGRATE_CATALOG": str(catalog), "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull}
        tool = subprocess.run([sys.executable, "-m", "ragflow_migrate", "run"], env=full, capture_output=True,
                              text=True, timeout=300)
        assert tool.returncode == 0, tool.stdout[-3000:] + tool.stderr[-2000:]
        schema = floor.schema_apply(env, catalog)
        assert schema.returncode == 0, schema.stdout[-3000:] + schema.stderr[-2000:]
        result = floor.run_floor(env, catalog)
        assert [s["step"] for s in result["steps"]] == [f"data {s}" for s in floor.STAGES]
        conn = database.server.connect()
        try:
            check = floor.compare(conn, database.name, floor_db)
        finally:
            conn.close()
        assert check["match"], json.dumps({k: check[k] for k in ("differing", "samples")}, default=str)[:4000]
    finally:
        database.server.drop_database(floor_db)
