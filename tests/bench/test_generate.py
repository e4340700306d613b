"""The benchmark's generator builds what it claims (never timed here: `make bench` measures).

* the profiles are seeded: same seed, same data; exactly 10 tenant_llm rows per tenant;
* an XS database (100 tenants) at v0.20.0 and v0.25.6 has the documented row counts, the
  release's schema untouched (indexes dropped for the load are all back), no history table;
* the tool upgrades it to v0.27.0 (what `make bench` does at every scale).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate  # noqa: E402


def test_profiles_are_seeded_and_average_ten_rows():
    catalog, _raw = generate.load_catalog(generate.DEFAULT_CATALOG)
    a = generate.build_profiles(42, catalog)
    b = generate.build_profiles(42, catalog)
    c = generate.build_profiles(7, catalog)
    assert [p.slots for p in a] == [p.slots for p in b]
    assert [p.slots for p in a] != [p.slots for p in c]
    assert sum(len(p.slots) for p in a) == generate.PROFILES * generate.LLM_PER_TENANT
    for p in a:
        names = [(s.factory, s.llm_name) for s in p.slots]
        assert len(names) == len(set(names)), "tenant_llm's unique key (tenant, factory, name)"
    kinds = {s.key_kind for p in a for s in p.slots}
    assert {"plain", "json_tools", "null", "empty", "volc"} <= kinds
    assert {s.status for p in a for s in p.slots} == {"0", "1"}


def _tool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {"PATH": os.environ.get("PATH", ""), **env, "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
            "RAGFLOW_MIGRATE_CATALOG": str(generate.DEFAULT_CATALOG)}
    return subprocess.run([sys.executable, "-m", "ragflow_migrate", *args], env=full, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("release", ["v0.20.0", "v0.25.6"])
def test_xs_database_has_the_documented_shape(database, release):
    result = generate.generate(database.env, release=release, scale="XS", log=lambda _m: None)
    tenants = generate.SCALES["XS"]
    rows = result["rows"]
    assert rows["tenant"] == rows["user"] == rows["dialog"] == tenants
    long_names = len(range(7, tenants, 300))  # every 300th tenant's custom model with a long name
    assert rows["tenant_llm"] == 10 * tenants + long_names
    assert rows["document"] == rows["task"] == 10 * tenants
    assert rows["knowledgebase"] == rows["conversation"] == 2 * tenants
    assert rows["user_tenant"] == tenants + tenants // 10
    assert ("memory" in rows) == (release != "v0.20.0")  # memory appears in v0.23.0
    for table, count in rows.items():
        assert database.query(f"SELECT COUNT(*) FROM `{table}`")[0][0] == count, table
    tables = database.tables()
    assert not [t for t in tables if t.startswith(("ragflow_migrate_", "_bench_"))]
    # model ids as RAGFlow stores them, and keys in every shape
    assert database.query("SELECT COUNT(*) FROM tenant WHERE llm_id NOT LIKE '%@%'")[0][0] == 0
    assert database.query("SELECT COUNT(*) FROM tenant_llm WHERE api_key IS NULL")[0][0] > 0
    assert database.query("SELECT COUNT(*) FROM tenant_llm WHERE api_key LIKE '{%is_tools%'")[0][0] > 0
    if release == "v0.25.6":  # RAGFlow's startup filled the INT tenant_*_id columns
        assert database.query("SELECT COUNT(*) FROM tenant WHERE tenant_llm_id IS NOT NULL")[0][0] > 0

    diff = _tool(database.env, "schema", "diff", "--json", "--target-version", release)
    assert diff.returncode == 0, diff.stdout[-3000:] + diff.stderr[-2000:]

    run = _tool(database.env, "run")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    finished = [json.loads(line) for line in run.stdout.splitlines() if '"run.finished"' in line]
    assert finished and finished[-1]["outcome"] == "migrated"
    # the long m@p references stay two-part (they would not fit as m@default@p) and are resolved
    long_refs = database.query("SELECT embd_id, tenant_embd_id FROM tenant WHERE embd_id LIKE 'long-embedding-%'")
    assert len(long_refs) == long_names and all(len(r) == 125 and "@default@" not in r for r, _ in long_refs)
    assert all(i and len(i) == 32 for _r, i in long_refs), long_refs
