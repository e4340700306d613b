"""Each schema operation emits only what the live schema still needs (pure: no database)."""

from __future__ import annotations

from ragflow_migrate.db.dialect import ServerInfo
from ragflow_migrate.schema.dataops import DeduplicateUserEmails
from ragflow_migrate.schema.operations import (
    AddColumn,
    AddIndex,
    ChangeColumn,
    CreateTable,
    DropIndex,
    RenameColumn,
    RenameIndex,
    SurrogatePrimaryKey,
    render_create_table,
    render_literal,
    simulate,
)
from ragflow_migrate.schema.snapshot import Column, Index, Snapshot, Table, normalize_default, normalize_type

ID = Column("id", "varchar(32)", False)


def snap(*tables: Table) -> Snapshot:
    return Snapshot({t.name: t for t in tables})


def table(name="t", columns=(), indexes=()) -> Table:
    t = Table(name)
    for c in (ID, *columns):
        t.columns[c.name] = c
    t.indexes["PRIMARY"] = Index("PRIMARY", True, (("id", None),))
    for i in indexes:
        t.indexes[i.name] = i
    return t


def sqls(op, live, expected=None):
    expected = expected if expected is not None else live
    return [s.sql for s in op.statements(live, expected)]


STATUS = Column("status", "varchar(1)", False)


def test_add_not_null_column_fills_rows_then_drops_the_default():
    op = AddColumn("t", STATUS, fill="1")
    assert sqls(op, snap(table())) == [
        "ALTER TABLE `t` ADD COLUMN `status` VARCHAR(1) NOT NULL DEFAULT '1'",
        "ALTER TABLE `t` ALTER COLUMN `status` DROP DEFAULT",
    ]


def test_add_column_resumes_after_a_kill_between_its_two_statements():
    half_done = table(columns=[Column("status", "varchar(1)", False, default="1")])
    assert sqls(AddColumn("t", STATUS, fill="1"), snap(half_done)) == [
        "ALTER TABLE `t` ALTER COLUMN `status` DROP DEFAULT"]
    assert sqls(AddColumn("t", STATUS, fill="1"), snap(table(columns=[STATUS]))) == []


def test_add_nullable_column_has_no_fill():
    col = Column("note", "text", True)
    assert sqls(AddColumn("t", col, fill="x"), snap(table())) == ["ALTER TABLE `t` ADD COLUMN `note` TEXT NULL"]


def test_add_existing_column_of_another_type_is_left_and_reported():
    live = snap(table(columns=[Column("x", "varchar(32)", True)]))
    op = AddColumn("t", Column("x", "int", True))
    assert sqls(op, live) == []
    assert "exists as varchar(32)" in op.notices(live)[0]


def test_change_column_only_from_a_known_previous_definition():
    new = Column("size", "bigint", False)
    op = ChangeColumn("t", new, (Column("size", "int", False),))
    assert sqls(op, snap(table(columns=[Column("size", "int", False)]))) == [
        "ALTER TABLE `t` MODIFY COLUMN `size` BIGINT NOT NULL"]
    assert sqls(op, snap(table(columns=[new]))) == []
    odd = snap(table(columns=[Column("size", "varchar(10)", False)]))
    assert sqls(op, odd) == [] and "left as it is" in op.notices(odd)[0]


def test_deferred_change_runs_nothing():
    op = ChangeColumn("t", Column("x", "varchar(32)", True), (Column("x", "int", True),), deferred_to="data x")
    assert sqls(op, snap(table(columns=[Column("x", "int", True)]))) == []


def test_rename_column_every_state():
    new = Column("wiki_task_id", "varchar(32)", True)
    op = RenameColumn("t", "artifact_task_id", new)
    old_only = snap(table(columns=[Column("artifact_task_id", "varchar(32)", True)]))
    assert sqls(op, old_only) == ["ALTER TABLE `t` RENAME COLUMN `artifact_task_id` TO `wiki_task_id`"]
    assert sqls(op, snap(table(columns=[new]))) == []
    assert sqls(op, snap(table())) == ["ALTER TABLE `t` ADD COLUMN `wiki_task_id` VARCHAR(32) NULL"]
    both = snap(table(columns=[Column("artifact_task_id", "varchar(32)", True), new]))
    assert sqls(op, both) == [] and "kept as an extra column" in op.notices(both)[0]


TAGS = Column("tags", "varchar(512)", False)
WANT = Index("usercanvas_tags", False, (("tags", None),))


def test_add_index_renames_an_equivalent_index_instead_of_building_it():
    live = snap(table(columns=[TAGS], indexes=[Index("user_canvas_tags", False, (("tags", None),))]))
    expected = snap(table(columns=[TAGS], indexes=[WANT]))
    assert sqls(AddIndex("t", WANT), live, expected) == [
        "ALTER TABLE `t` RENAME INDEX `user_canvas_tags` TO `usercanvas_tags`"]


def test_add_index_never_steals_an_index_the_release_declares():
    other = Index("declared_elsewhere", False, (("tags", None),))
    live = snap(table(columns=[TAGS], indexes=[other]))
    expected = snap(table(columns=[TAGS], indexes=[other, WANT]))
    assert sqls(AddIndex("t", WANT), live, expected) == [
        "ALTER TABLE `t` ADD INDEX `usercanvas_tags` (`tags`)"]


def test_add_index_replaces_a_same_named_index_in_one_statement():
    unique = Index("user_email", True, (("email", None),))
    live = snap(table(columns=[Column("email", "varchar(255)", False)],
                      indexes=[Index("user_email", False, (("email", None),))]))
    assert sqls(AddIndex("t", unique), live) == [
        "ALTER TABLE `t` DROP INDEX `user_email`, ADD UNIQUE INDEX `user_email` (`email`)"]
    assert sqls(AddIndex("t", unique), snap(table(indexes=[unique]))) == []


def test_prefix_indexes_are_explicit():
    idx = Index("tenantlangfuse_secret_key", False, (("secret_key", 768),))
    assert sqls(AddIndex("t", idx), snap(table())) == [
        "ALTER TABLE `t` ADD INDEX `tenantlangfuse_secret_key` (`secret_key`(768))"]


def test_rename_index_and_drop_index():
    idx = Index("knowledgebase_wiki_task_id", False, (("wiki_task_id", None),))
    old = Index("knowledgebase_artifact_task_id", False, (("wiki_task_id", None),))
    op = RenameIndex("t", old.name, idx)
    assert sqls(op, snap(table(indexes=[old]))) == [
        "ALTER TABLE `t` RENAME INDEX `knowledgebase_artifact_task_id` TO `knowledgebase_wiki_task_id`"]
    assert sqls(op, snap(table(indexes=[idx]))) == []
    assert sqls(DropIndex("t", "gone"), snap(table())) == []
    assert sqls(DropIndex("t", old.name), snap(table(indexes=[old]))) == [
        "ALTER TABLE `t` DROP INDEX `knowledgebase_artifact_task_id`"]


def test_create_table_is_one_statement_with_its_indexes_and_skips_existing():
    t = table(columns=[TAGS], indexes=[WANT])
    stmts = sqls(CreateTable(t), snap())
    assert len(stmts) == 1 and "KEY `usercanvas_tags` (`tags`)" in stmts[0]
    assert "CHARSET" not in stmts[0]  # tables take the database's defaults, as RAGFlow's do
    assert sqls(CreateTable(t), snap(t)) == []


def composite_tenant_llm(extra_cols=(), pk=("tenant_id", "llm_factory", "llm_name"), indexes=()):
    t = Table("tenant_llm")
    for c in (*extra_cols, Column("tenant_id", "varchar(32)", False), Column("llm_factory", "varchar(128)", False),
              Column("llm_name", "varchar(128)", False)):
        t.columns[c.name] = c
    if pk:
        t.indexes["PRIMARY"] = Index("PRIMARY", True, tuple((c, None) for c in pk))
    for i in indexes:
        t.indexes[i.name] = i
    return t


SURROGATE = SurrogatePrimaryKey(
    "tenant_llm", Column("id", "int", False, auto_increment=True),
    Index("tenantllm_tenant_id_llm_factory_llm_name", True,
          (("tenant_id", None), ("llm_factory", None), ("llm_name", None))))


def test_surrogate_key_is_one_statement():
    assert sqls(SURROGATE, snap(composite_tenant_llm())) == [
        "ALTER TABLE `tenant_llm` DROP PRIMARY KEY, ADD COLUMN `id` INT NOT NULL AUTO_INCREMENT FIRST, "
        "ADD PRIMARY KEY (`id`), ADD UNIQUE INDEX `tenantllm_tenant_id_llm_factory_llm_name` "
        "(`tenant_id`, `llm_factory`, `llm_name`)"]


def test_surrogate_key_finishes_what_ragflows_own_conversion_left():
    temp = Column("temp_id", "int", True)
    assert sqls(SURROGATE, snap(composite_tenant_llm([temp]))) == [
        "ALTER TABLE `tenant_llm` DROP COLUMN `temp_id`, DROP PRIMARY KEY, ADD COLUMN `id` INT NOT NULL "
        "AUTO_INCREMENT FIRST, ADD PRIMARY KEY (`id`), ADD UNIQUE INDEX `tenantllm_tenant_id_llm_factory_llm_name` "
        "(`tenant_id`, `llm_factory`, `llm_name`)"]
    keyed = composite_tenant_llm([Column("temp_id", "int", False, auto_increment=True)], pk=("temp_id",),
                                 indexes=[Index("uk_tenant_llm", True, SURROGATE.unique.columns)])
    assert sqls(SURROGATE, snap(keyed)) == ["ALTER TABLE `tenant_llm` RENAME COLUMN `temp_id` TO `id`"]
    no_key = composite_tenant_llm(pk=())
    assert "DROP PRIMARY KEY" not in sqls(SURROGATE, snap(no_key))[0]
    done = composite_tenant_llm([Column("id", "int", False, auto_increment=True)], pk=("id",))
    assert sqls(SURROGATE, snap(done)) == []


def test_simulate_follows_what_statements_do():
    live = snap(table(columns=[Column("artifact_task_id", "varchar(32)", True)],
                      indexes=[Index("user_canvas_tags", False, (("artifact_task_id", None),))]))
    new = Column("wiki_task_id", "varchar(32)", True)
    op = RenameColumn("t", "artifact_task_id", new)
    expected = snap(table(columns=[new]))
    simulate(live, op, expected)
    assert "wiki_task_id" in live.tables["t"].columns and "artifact_task_id" not in live.tables["t"].columns
    assert sqls(op, live, expected) == []


def test_deduplicate_emails_only_while_email_is_not_unique():
    email = Column("email", "varchar(255)", False)
    plain = snap(table("user", [email], [Index("user_email", False, (("email", None),))]))
    unique = snap(table("user", [email], [Index("user_email", True, (("email", None),))]))
    assert len(sqls(DeduplicateUserEmails(), plain)) == 1
    assert sqls(DeduplicateUserEmails(), unique) == []


def test_literals_and_normal_forms():
    assert render_literal("it's") == "'it''s'"
    assert render_literal("a\\b") == "'a\\\\b'"
    assert render_literal(False) == "0"
    assert normalize_type("int(11)") == "int" and normalize_type("bigint(20)") == "bigint"
    assert normalize_type("tinyint(1)") == "tinyint(1)" and normalize_type("VARCHAR(32)") == "varchar(32)"
    assert normalize_default("NULL", True) is None and normalize_default("'x'", True) == "x"
    assert render_create_table(table()).startswith("CREATE TABLE `t` (")


def test_algorithms_by_server():
    mysql = ServerInfo.from_version("9.7.4")
    maria = ServerInfo.from_version("10.11.19-MariaDB-0+deb12u1")
    old = ServerInfo.from_version("5.7.44")
    assert mysql.algorithms("add_column") == ("INSTANT", "INPLACE", "COPY")
    assert maria.is_mariadb and maria.algorithms("add_column")[0] == "INSTANT"
    assert old.algorithms("add_column") == ("INPLACE", "COPY")
    assert mysql.algorithms("add_index") == ("INPLACE", "COPY")


def test_index_build_memory_is_raised_only_where_the_variable_exists():
    assert ServerInfo.from_version("9.7.4").session_tuning_sql() == \
        "SET SESSION innodb_ddl_buffer_size = 16777216"
    assert ServerInfo.from_version("8.0.27").session_tuning_sql() is not None
    assert ServerInfo.from_version("8.0.26").session_tuning_sql() is None  # the variable came in 8.0.27
    assert ServerInfo.from_version("10.11.19-MariaDB-0+deb12u1").session_tuning_sql() is None
