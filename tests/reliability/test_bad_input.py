"""Bad input: each case with the exit code and the words the user sees, and nothing lost.

Configuration cases need no database (they run once, not per server: no server is reached, a
closed port stands in for MySQL in case validation lets a value through). Database cases run on
both servers, including legacy rows and the model catalogue the data stages read.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import relkit
from relkit import BEFORE_MODELS

from ragflow_migrate.errors import ExitCode


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Case:
    code: int
    words: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ("run",)
    files: dict[str, str | bytes] = field(default_factory=dict)  # name → content, in tmp_path
    drop_env: tuple[str, ...] = ()


YAML_OK = "mysql:\n  host: 127.0.0.1\n  port: {port}\n"

CONFIG_CASES: dict[str, Case] = {
    "yaml-malformed": Case(2, ("conf.yaml:3:", "malformed YAML"), args=("run", "--config", "{tmp}/conf.yaml"),
                           files={"conf.yaml": "mysql:\n  host: [127.0.0.1\n  port: 3306\n"}),
    "yaml-top-level-list": Case(2, ("conf.yaml", "expected a mapping at the top level"),
                                args=("run", "--config", "{tmp}/conf.yaml"), files={"conf.yaml": "- mysql\n- x\n"}),
    "yaml-section-not-mapping": Case(2, ("conf.yaml:mysql", "expected a mapping"),
                                     args=("run", "--config", "{tmp}/conf.yaml"), files={"conf.yaml": "mysql: db\n"}),
    "yaml-port-wrong-type": Case(2, ("conf.yaml:mysql.port", "'abc' is not a port number"),
                                 args=("run", "--config", "{tmp}/conf.yaml"),
                                 files={"conf.yaml": "mysql:\n  host: 127.0.0.1\n  port: abc\n"}),
    "yaml-port-boolean": Case(2, ("conf.yaml:mysql.port", "boolean"), args=("run", "--config", "{tmp}/conf.yaml"),
                              files={"conf.yaml": "mysql:\n  host: 127.0.0.1\n  port: yes\n"}),
    "yaml-unknown-key": Case(2, ("conf.yaml:mysql.hots", "unknown key"), args=("run", "--config", "{tmp}/conf.yaml"),
                             files={"conf.yaml": "mysql:\n  hots: 127.0.0.1\n"}),
    "yaml-unknown-tool-key": Case(2, ("ragflow_migrate.lock_timout", "unknown key"),
                                  args=("run", "--config", "{tmp}/conf.yaml"),
                                  files={"conf.yaml": YAML_OK + "ragflow_migrate:\n  lock_timout: 5\n"}),
    "yaml-placeholder": Case(2, ("conf.yaml:mysql.host", "unexpanded placeholder"),
                             args=("run", "--config", "{tmp}/conf.yaml"),
                             files={"conf.yaml": "mysql:\n  host: ${MYSQL_HOST}\n"}),
    "yaml-local-overlay-malformed": Case(2, ("local.conf.yaml", "malformed YAML"),
                                         args=("run", "--config", "{tmp}/conf.yaml"),
                                         files={"conf.yaml": YAML_OK, "local.conf.yaml": "mysql: {host: [\n"}),
    "yaml-not-utf8": Case(2, ("conf.yaml", "cannot read"), args=("run", "--config", "{tmp}/conf.yaml"),
                          files={"conf.yaml": b"mysql:\n  host: \xff\xfe\n"}),
    "config-file-missing": Case(2, ("/nonexistent/service_conf.yaml", "does not exist"),
                                args=("run", "--config", "/nonexistent/service_conf.yaml")),
    "password-file-missing": Case(2, ("password file", "/nonexistent/password", "does not exist"),
                                  args=("run", "--password-file", "/nonexistent/password")),
    "password-file-is-a-folder": Case(2, ("cannot read password file",), args=("run", "--password-file", "{tmp}")),
    "port-zero": Case(2, ("env MYSQL_PORT", "out of range"), env={"MYSQL_PORT": "0"}),
    "port-not-a-number": Case(2, ("env MYSQL_PORT", "'mysql' is not a port number"), env={"MYSQL_PORT": "mysql"}),
    "port-flag-too-big": Case(2, ("flag --port", "70000 is out of range"), args=("run", "--port", "70000")),
    "target-unknown": Case(2, ("flag --target-version", "unknown RAGFlow release 'v0.99.0'", "v0.27.0"),
                           args=("run", "--target-version", "v0.99.0")),
    "target-garbage-env": Case(2, ("env RAGFLOW_MIGRATE_TARGET_VERSION",),
                               env={"RAGFLOW_MIGRATE_TARGET_VERSION": "latest"}),
    "database-name-empty": Case(2, ("env MYSQL_DBNAME", "must not be empty"), env={"MYSQL_DBNAME": ""}),
    "database-name-blank": Case(2, ("env MYSQL_DBNAME", "must not be empty"), env={"MYSQL_DBNAME": "   "}),
    "database-name-slash": Case(2, ("env MYSQL_DBNAME", "refuses", "'/'"), env={"MYSQL_DBNAME": "rag/flow"}),
    "database-name-dot": Case(2, ("env MYSQL_DBNAME", "refuses", "'.'"), env={"MYSQL_DBNAME": "rag.flow"}),
    "database-name-too-long": Case(2, ("65 characters long", "64"), env={"MYSQL_DBNAME": "r" * 65}),
    "database-name-trailing-space": Case(2, ("end with a space",), env={"MYSQL_DBNAME": "rag_flow "}),
    "lock-timeout-not-a-duration": Case(2, ("env RAGFLOW_MIGRATE_LOCK_TIMEOUT", "not a duration"),
                                        env={"RAGFLOW_MIGRATE_LOCK_TIMEOUT": "forever"}),
    "negative-duration": Case(2, ("flag --wait-timeout", "not a duration"), args=("run", "--wait-timeout=-5s")),
    "batch-size-zero": Case(2, ("env RAGFLOW_MIGRATE_BATCH_SIZE", "at least 1"),
                            env={"RAGFLOW_MIGRATE_BATCH_SIZE": "0"}),
    "log-level-unknown": Case(2, ("env RAGFLOW_MIGRATE_LOG_LEVEL", "not one of"),
                              env={"RAGFLOW_MIGRATE_LOG_LEVEL": "verbose"}),
    "boolean-garbage": Case(2, ("env RAGFLOW_MIGRATE_CREATE_DATABASE", "not a boolean"),
                            env={"RAGFLOW_MIGRATE_CREATE_DATABASE": "maybe"}),
    "lock-name-too-long": Case(2, ("64 characters",), env={"RAGFLOW_MIGRATE_LOCK_NAME": "l" * 65}),
    "no-host": Case(2, ("no MySQL host configured", "MYSQL_HOST"), drop_env=("MYSQL_HOST",)),
    "host-with-space": Case(2, ("env MYSQL_HOST", "white space"), env={"MYSQL_HOST": "my sql"}),
    "ssl-ca-missing": Case(2, ("flag --ssl-ca", "/nonexistent/ca.pem", "does not exist"),
                           args=("run", "--ssl-ca", "/nonexistent/ca.pem")),
    "ssl-ca-not-pem": Case(2, ("flag --ssl-ca", "not usable"), args=("run", "--ssl-ca", "{tmp}/ca.pem"),
                           files={"ca.pem": "this is not a certificate\n"}),
    "wait-for-version-bad-timeout": Case(2, ("--timeout", "not a duration"),
                                         args=("wait-for-version", "--timeout", "soon")),
    "unknown-flag": Case(2, ("unrecognized arguments: --pasword",), args=("run", "--pasword", "x")),
    "unknown-command": Case(2, ("invalid choice", "'migrate'"), args=("migrate",)),
    "password-flag-does-not-exist": Case(2, ("there is no --password flag", "--password-file"),
                                         args=("run", "--password", "s3cr3t-in-argv")),
    "abbreviated-flag": Case(2, ("unrecognized arguments: --lock-time",), args=("run", "--lock-time", "5")),
}


@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_configuration_error(forkrun, tmp_path, name):
    case = CONFIG_CASES[name]
    for fname, content in case.files.items():
        path = tmp_path / fname
        path.write_bytes(content if isinstance(content, bytes) else content.replace("{port}", str(_closed_port())).encode())
    env = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(_closed_port()), "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "1",
           **case.env}
    for key in case.drop_env:
        env.pop(key, None)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    result = forkrun.run(env, *args, timeout=60)
    assert result.code == case.code, result.explain()
    seen = result.stderr if not result.named("run.finished") else \
        f"{result.summary.get('error', '')} {result.summary.get('hint', '')}"
    words = [w.replace("{tmp}", str(tmp_path)) for w in case.words]
    missing = [w for w in words if w not in seen]
    assert not missing, f"the user does not see {missing} in: {seen}"
    if result.named("run.finished"):
        assert result.summary["outcome"] == "config_error" and result.summary["exit_code"] == case.code
        assert not result.named("db.wait.attempt"), "a bad configuration must fail before reaching for MySQL"


# --- against a server -------------------------------------------------------------------------------


def _serve_junk() -> int:
    """A TCP service that is not MySQL (an HTTP server's answer, then close)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def _installed(forkrun, database) -> None:
    result = forkrun.run(database.env, "run")
    assert result.code == 0, result.explain()


@dataclass
class DbCase:
    code: int
    words: tuple[str, ...]
    setup: Callable | None = None  # (forkrun, database) → None
    args: tuple[str, ...] = ("run",)
    env: dict[str, str] = field(default_factory=dict)
    unchanged: bool = False  # the run must change nothing at all
    old: str | None = None  # start from this RAGFlow release (seeded)


def _hist(sql: str) -> Callable:
    def edit(forkrun, db) -> None:
        _installed(forkrun, db)
        db.query(sql)
    return edit


def _legacy_row(api_key: str | None = "sk-x", **values) -> Callable:
    def add(forkrun, db) -> None:
        conn = db.connect()
        try:
            relkit.insert_row(conn, "tenant_llm", {}, tenant_id="00badbadbadbadbadbadbadbadbadbad",
                              llm_factory=values.pop("llm_factory", "OpenAI"),
                              llm_name=values.pop("llm_name", "gpt-4o"), api_key=api_key,
                              model_type=values.pop("model_type", "chat"), status="1", **values)
        finally:
            conn.close()
    return add


DB_CASES: dict[str, DbCase] = {
    "port-is-not-mysql": DbCase(3, ("cannot connect", "MYSQL_PORT"), env={"MYSQL_PORT": "{junk_port}",
                                                                        "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "2"}),
    "port-closed": DbCase(3, ("did not answer within 1s", "MYSQL_PORT"),
                          env={"MYSQL_PORT": "{closed_port}", "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "1"}),
    "database-missing": DbCase(2, ("does not exist", "--create-database"), env={"MYSQL_DBNAME": "missing_{db_tail}"}),
    "database-at-a-newer-release": DbCase(9, ("newer than this tool knows", "011_v0_28_0", "nothing was changed"),
                                          setup=_hist("INSERT INTO ragflow_migrate_history (name, migrated_at) "
                                                      "VALUES ('011_v0_28_0', NOW())"), unchanged=True),
    "database-past-the-target": DbCase(9, ("past the target v0.25.6", "downgrades are not supported"),
                                       setup=lambda f, d: _installed(f, d),
                                       args=("run", "--target-version", "v0.25.6"), unchanged=True),
    "history-edited-unknown-row": DbCase(9, ("does not know: edited by hand", "nothing was changed"),
                                         setup=_hist("INSERT INTO ragflow_migrate_history (name, migrated_at) "
                                                     "VALUES ('edited by hand', NOW())"), unchanged=True),
    "history-edited-gap": DbCase(0, ("gaps (003_v0_22_0)",),
                                 setup=_hist("DELETE FROM ragflow_migrate_history WHERE name = '003_v0_22_0'")),
    "history-edited-duplicates": DbCase(0, (), setup=_hist(
        "INSERT INTO ragflow_migrate_history (name, migrated_at) SELECT name, migrated_at "
        "FROM ragflow_migrate_history WHERE name LIKE '00%'"), unchanged=True),
    "history-emptied": DbCase(0, ("adopting",), setup=_hist("DELETE FROM ragflow_migrate_history")),
    "status-check-pending": DbCase(12, ("not at v0.27.0",), args=("status", "--check"), old=BEFORE_MODELS,
                                   unchanged=True),
    "legacy-key-broken-json": DbCase(0, (), old=BEFORE_MODELS, setup=_legacy_row('{"api_key": "sk-x", ')),
    "legacy-key-too-long": DbCase(10, ("tenant_model_instance.api_key", "512"), old=BEFORE_MODELS,
                                  setup=_legacy_row("k" * 600)),
    "legacy-null-key": DbCase(0, (), old=BEFORE_MODELS, setup=_legacy_row(None)),
    "legacy-null-model-type": DbCase(0, (), old=BEFORE_MODELS, setup=_legacy_row("sk-y", model_type=None)),
    "catalogue-missing": DbCase(2, ("model catalogue /nonexistent/llm_factories.json does not exist",),
                                old=BEFORE_MODELS, env={"RAGFLOW_MIGRATE_CATALOG": "/nonexistent/llm_factories.json"}),
    "catalogue-malformed": DbCase(2, ("malformed JSON",), old=BEFORE_MODELS,
                                  env={"RAGFLOW_MIGRATE_CATALOG": "{tmp}/llm_factories.json"}),
}


@pytest.mark.parametrize("name", list(DB_CASES))
def test_database_input(forkrun, database, tmp_path, name):
    case = DB_CASES[name]
    if case.old:
        relkit.build_old_database(database.server, database.name, case.old)
    if case.setup:
        case.setup(forkrun, database)
    (tmp_path / "llm_factories.json").write_text('{"factory_llm_infos": [')
    subst = {"{junk_port}": str(_serve_junk()) if "{junk_port}" in str(case.env) else "",
             "{closed_port}": str(_closed_port()), "{db_tail}": database.name[-12:], "{tmp}": str(tmp_path)}
    env = dict(database.env)
    for key, value in case.env.items():
        for k, v in subst.items():
            value = value.replace(k, v)
        env[key] = value
    before = relkit.end_state(database.server, database.name)
    result = forkrun.run(env, *case.args, timeout=120)
    assert result.code == case.code, result.explain()
    summary = result.summary
    seen = " ".join(str(summary.get(k, "")) for k in ("error", "hint")) + " " + " ".join(
        " ".join(e.get("notes") or []) for e in result.named("plan.ready"))
    missing = [w for w in case.words if w not in seen]
    assert not missing, f"the user does not see {missing} in: {seen}"
    after = relkit.end_state(database.server, database.name)
    if case.unchanged:
        assert after == before, relkit.describe_difference(after, before)
    if case.code == 0 and case.args[0] == "run":
        again = forkrun.run(env, "run")
        assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()


# --- identifiers with odd characters ------------------------------------------------------------------

ODD_NAMES = {"backtick": "rag`flow", "quotes": "rag'flow\"db", "space": "rag flow", "unicode": "ragflow_模型_ü",
             "sql-in-name": "x`; DROP DATABASE mysql; --"}


@pytest.mark.parametrize("kind", list(ODD_NAMES))
def test_odd_database_names_upgrade_like_any_other(forkrun, server, kind):
    name = ODD_NAMES[kind]
    server.drop_database(name)
    try:
        relkit.build_old_database(server, name, BEFORE_MODELS)
        env = server.env(name)
        result = forkrun.run(env, "run")
        assert result.code == 0, result.explain()
        status = forkrun.run(env, "status", "--json")
        assert status.code == 0 and '"state": "up_to_date"' in status.stdout, status.explain()
        assert server.query("SELECT COUNT(*) FROM tenant", database=name)[0][0] > 0
    finally:
        server.ensure_running().drop_database(name)
    # nothing else on the server was touched
    assert server.query("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'mysql'")[0][0] == 1


def test_odd_name_fresh_install_with_create_database(forkrun, server):
    name = "new rag`flow 'ü'"
    server.drop_database(name)
    try:
        result = forkrun.run(server.env(name), "run", "--create-database")
        assert result.code == 0, result.explain()
        assert result.named("db.created")[0]["database"] == name
    finally:
        server.ensure_running().drop_database(name)


# --- servers and accounts that cannot migrate ------------------------------------------------------------


def test_read_only_server_refuses_and_changes_nothing(forkrun, old_db):
    database = old_db(BEFORE_MODELS)
    server = database.server
    user = f"ro_{database.name[-6:]}"
    server.create_user(user, "ro-pass-1", [f"SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, "
                                           f"CREATE TEMPORARY TABLES ON `{database.name}`.*"])
    before = relkit.end_state(server, database.name)
    server.query("SET GLOBAL read_only = ON")
    try:
        env = server.env(database.name, user, "ro-pass-1")
        result = forkrun.run(env, "run")
        status = forkrun.run(env, "status")
    finally:
        server.query("SET GLOBAL read_only = OFF")
        server.drop_user(user)
    assert result.code == ExitCode.STEP_FAILED, result.explain()
    assert "read-only" in result.summary["error"] and "primary" in result.summary["hint"]
    assert status.code == 0, status.explain()  # reading still works
    assert relkit.end_state(server, database.name) == before


def test_user_without_alter_privilege_is_told_what_to_grant(forkrun, old_db, reference):
    want = reference(BEFORE_MODELS)
    database = old_db(BEFORE_MODELS)
    server = database.server
    user = f"noalter_{database.name[-6:]}"
    server.create_user(user, "na-pass-1", [f"SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX, DROP, CREATE TEMPORARY "
                                           f"TABLES ON `{database.name}`.*"])
    try:
        env = server.env(database.name, user, "na-pass-1")
        result = forkrun.run(env, "run")
        assert result.code == ExitCode.AUTH, result.explain()
        # found by the preflight, before anything is written (the end state below proves it too)
        assert f"lacks ALTER on {database.name}" in result.summary["error"] and "Privileges" in result.summary["hint"]
        assert f"GRANT ALTER ON `{database.name}`.*" in result.summary["hint"]
        assert not result.named("step.started")
        server.query(f"GRANT ALTER ON `{database.name}`.* TO '{user}'@'%'")
        again = forkrun.run(env, "run")
        assert again.code == 0, again.explain()
    finally:
        server.drop_user(user)
    relkit.assert_same_end_state(server, database.name, want, "after granting ALTER")


def test_user_without_any_grant_fails_fast_with_the_auth_code(forkrun, database):
    user = f"nogrant_{database.name[-6:]}"
    database.server.create_user(user, "ng-pass-1")
    try:
        result = forkrun.run(database.server.env(database.name, user, "ng-pass-1"), "run")
    finally:
        database.server.drop_user(user)
    assert result.code == ExitCode.AUTH, result.explain()
    assert "access denied to the database" in result.summary["error"]
    assert not result.named("db.wait.attempt"), "access denied is not worth waiting for"

