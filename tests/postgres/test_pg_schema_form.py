"""The PostgreSQL normal form against RAGFlow's own PostgreSQL schemas (``shared/ragflow-schema/
postgres-15``): every fresh dump, read back by ``live_snapshot``, is exactly its release's declared
schema mapped by ``to_postgres``; every upgrade dump differs from the target in exactly the
PostgreSQL-only states of docs/postgres.md, which the chain must repair.
"""

from __future__ import annotations

import pytest

from ragflow_migrate.backends.postgres.introspect import live_snapshot, table_names
from ragflow_migrate.backends.postgres.pgform import to_postgres
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.diff import compare
from servers import harness, postgres

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

REFERENCE = harness.schema_root() / postgres.LABEL
FRESH = ("v0.20.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")
UPGRADES = ("v0.20.0", "v0.24.0", "v0.25.6", "v0.26.4")

#: Differences of a fresh PostgreSQL install from its declared schema that are RAGFlow defects on
#: PostgreSQL. None: the PostgreSQL fresh schemas are the MySQL ones up to the type mapping (reference
#: README), and the chain declares what RAGFlow creates, defects included: the stray
#: ``chat_channel.dialog_id`` and its index (v0.26.4, v0.27.0) are declared, as on MySQL.
FRESH_DEFECTS: dict[str, set[tuple]] = {}


def _load(pg_server, pg_database, stem: str):
    pg_server.load_sql(pg_database, REFERENCE / f"{stem}.sql")
    with pg_server.connect(pg_database) as conn:
        return live_snapshot(conn, pg_database), table_names(conn)


def _key(difference) -> tuple:
    return difference.kind, difference.table, difference.name, difference.actual


@pytest.mark.parametrize("release", FRESH)
def test_fresh_schema_is_the_declared_schema_in_postgres_form(pg_server, pg_database, release):
    live, names = _load(pg_server, pg_database, f"fresh-{release}")
    declared = to_postgres(chain.expected_schema(release))
    assert names == set(live.tables)
    assert {_key(d) for d in compare(declared, live)} == FRESH_DEFECTS.get(release, set())
    # compare() ignores the owning constraint: the primary keys are "<table>_pkey", nothing else has one.
    constraints = lambda snap: {(t.name, i.name, i.constraint) for t in snap.tables.values()  # noqa: E731
                                for i in t.indexes.values()}
    assert constraints(live) == constraints(declared)
    assert live.collation == "C.UTF-8"


@pytest.fixture(scope="module")
def fresh_v0_27_0(pg_server):
    """One database holding fresh v0.27.0, for the read-only checks below (a load each is slow)."""
    name = pg_server.create_database("pgform_fresh_v0_27_0")
    pg_server.load_sql(name, REFERENCE / "fresh-v0.27.0.sql")
    yield name
    pg_server.drop_database(name)


def test_fresh_v0_27_0_has_the_models_column_order(pg_server, fresh_v0_27_0):
    with pg_server.connect(fresh_v0_27_0) as conn:
        live = live_snapshot(conn)
    target = chain.install_schema("v0.27.0")
    assert {n: list(t.columns) for n, t in live.tables.items()} == {n: list(t.columns) for n, t in target.tables.items()}


def test_tables_restricts_the_snapshot(pg_server, fresh_v0_27_0):
    with pg_server.connect(fresh_v0_27_0) as conn:
        assert list(live_snapshot(conn, tables=["tenant_llm", "nope"]).tables) == ["tenant_llm"]
        assert live_snapshot(conn, tables=[]).tables == {}
        with pytest.raises(ValueError, match="not 'other'"):
            live_snapshot(conn, "other")


# --- the upgrade dumps: RAGFlow's own v0.27.0 startup on older databases ---------------------
# Each state is a row of docs/postgres.md "PostgreSQL-only states to adopt and repair", as the
# differences compare(target, live) reports: (kind, table, name, what the live schema has).

#: The 12 ``tenant_*_id`` columns of v0.25.0+ (varchar(32) since v0.27.0), each with its index.
TENANT_IDS = [("tenant", c) for c in ("tenant_llm_id", "tenant_embd_id", "tenant_asr_id", "tenant_img2txt_id",
                                      "tenant_rerank_id", "tenant_tts_id", "tenant_ocr_id")] + [
    ("dialog", "tenant_llm_id"), ("dialog", "tenant_rerank_id"), ("knowledgebase", "tenant_embd_id"),
    ("memory", "tenant_embd_id"), ("memory", "tenant_llm_id")]


def _missing(columns) -> set[tuple]:
    return {d for t, c in columns for d in (("missing_column", t, c, None), ("missing_index", t, f"{t}_{c}", None))}


def _renamed(pairs) -> set[tuple]:
    """Indexes named ``<table>_<col>`` by RAGFlow's add-column path where fresh has ``<modelclass>_<col>``."""
    return {d for t, c, fresh in pairs
            for d in (("missing_index", t, fresh, None), ("extra_index", t, f"{t}_{c}", f"INDEX ({c})"))}


STATES: dict[str, set[tuple]] = {
    # its CREATE INDEX failed with 42703 (the column was never added)
    "tenant_ocr_id missing": _missing([("tenant", "tenant_ocr_id")]),
    "tenant_*_id integer": {("column", t, c, "integer NULL") for t, c in TENANT_IDS if c != "tenant_ocr_id"},
    "tenant_*_id missing (all 12)": _missing(TENANT_IDS),
    "tenant_*_id missing (tenant, dialog, knowledgebase)": _missing([tc for tc in TENANT_IDS if tc[0] != "memory"]),
    "tenant_llm composite primary key": {
        ("index", "tenant_llm", "PRIMARY", "PRIMARY KEY (tenant_id, llm_factory, llm_name)"),
        ("missing_column", "tenant_llm", "id", None),
        ("column", "tenant_llm", "llm_name", "character varying(128) NOT NULL"),
        ("missing_index", "tenant_llm", "tenantllm_tenant_id_llm_factory_llm_name", None)},
    # the non-unique index is named user_email, so RAGFlow's check skips; CREATE UNIQUE fails 42P07
    "user_email not unique": {("index", "user", "user_email", "INDEX (email)")},
    # a full btree index on the text api_key (see the test): long keys fail to insert
    "tenantllm_api_key on text": {("extra_index", "tenant_llm", "tenantllm_api_key", "INDEX (api_key)")},
    "tenant_model.model_type varchar": {
        ("column", "tenant_model", "model_type", "character varying(32) NOT NULL"),
        *_renamed([("tenant_model", "model_type", "tenantmodel_model_type")])},
    "tenant.ocr_id varchar(128)": {("column", "tenant", "ocr_id", "character varying(128) NULL")},
    # the decisions shared with MySQL (retire, or rename the index):
    "tenantlangfuse_* indexes kept": {("extra_index", "tenant_langfuse", f"tenantlangfuse_{c}", f"INDEX ({c})")
                                      for c in ("secret_key", "public_key", "host")},
    "evaluation_* tables kept": {("extra_table", f"evaluation_{t}", None, None)
                                 for t in ("cases", "datasets", "results", "runs")},
    "document.meta_fields kept": {("extra_column", "document", "meta_fields", "text NULL")},
    "<table>_<col> index names (from v0.20.0)": _renamed([
        ("api_4_conversation", "exp_user_id", "api4conversation_exp_user_id"),
        ("canvas_template", "canvas_category", "canvastemplate_canvas_category"),
        ("user_canvas", "canvas_category", "usercanvas_canvas_category"),
        ("tenant_llm", "status", "tenantllm_status"),
        ("user_canvas", "tags", "usercanvas_tags"),
        ("user_canvas", "release", "usercanvas_release"),
        ("user_canvas_version", "release", "usercanvasversion_release")]),
    "<table>_<col> index names (from v0.24.0)": _renamed([
        ("user_canvas", "tags", "usercanvas_tags"),
        ("user_canvas", "release", "usercanvas_release"),
        ("user_canvas_version", "release", "usercanvasversion_release"),
        ("sync_logs", "task_type", "synclogs_task_type")]),
    "knowledgebase_artifact_task_id on wiki_task_id": {
        ("missing_index", "knowledgebase", "knowledgebase_wiki_task_id", None),
        ("extra_index", "knowledgebase", "knowledgebase_artifact_task_id", "INDEX (wiki_task_id)")},
    "compilation_template unique index named by table": {
        ("missing_index", "compilation_template", "compilationtemplate_tenant_id_group_id_name_is_builtin_status", None),
        ("extra_index", "compilation_template", "compilation_template_tenant_id_group_id_name_is_builtin_status",
         "UNIQUE (tenant_id, group_id, name, is_builtin, status)")},
    # The stray chat_channel.dialog_id (all chains) is no difference: fresh v0.27.0 has it too.
}

UPGRADE_STATES: dict[str, tuple[str, ...]] = {
    "v0.20.0": ("tenant_ocr_id missing", "tenant_*_id missing (tenant, dialog, knowledgebase)",
                "tenant_llm composite primary key", "user_email not unique", "tenantllm_api_key on text",
                "tenant.ocr_id varchar(128)", "tenantlangfuse_* indexes kept", "document.meta_fields kept",
                "<table>_<col> index names (from v0.20.0)"),
    "v0.24.0": ("tenant_ocr_id missing", "tenant_*_id missing (all 12)", "tenant_llm composite primary key",
                "user_email not unique", "tenant.ocr_id varchar(128)", "tenantlangfuse_* indexes kept",
                "evaluation_* tables kept", "<table>_<col> index names (from v0.24.0)"),
    "v0.25.6": ("tenant_ocr_id missing", "tenant_*_id integer", "tenant.ocr_id varchar(128)",
                "tenantlangfuse_* indexes kept", "evaluation_* tables kept"),
    "v0.26.4": ("tenant_ocr_id missing", "tenant_*_id integer", "tenant_model.model_type varchar",
                "tenantlangfuse_* indexes kept", "evaluation_* tables kept",
                "knowledgebase_artifact_task_id on wiki_task_id", "compilation_template unique index named by table"),
}


@pytest.mark.parametrize("release", UPGRADES)
def test_upgrade_dump_differs_from_the_target_by_exactly_the_postgres_states(pg_server, pg_database, release):
    live, _ = _load(pg_server, pg_database, f"upgrade-{release}-to-v0.27.0")
    found = {_key(d) for d in compare(to_postgres(chain.expected_schema("v0.27.0")), live)}
    expected = set().union(*(STATES[name] for name in UPGRADE_STATES[release]))
    assert sorted(found - expected, key=str) == [] and sorted(expected - found, key=str) == []
    if "tenantllm_api_key on text" in UPGRADE_STATES[release]:
        assert live.column("tenant_llm", "api_key").type == "text"
    if "tenant_llm composite primary key" in UPGRADE_STATES[release]:
        assert live.tables["tenant_llm"].primary_key.constraint == "tenant_llm_pkey"
