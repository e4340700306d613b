"""Security: no secret in logs, errors, tracebacks, process arguments or the termination
message; values travel as bound parameters and identifiers are quoted, also with hostile table
contents and names; the whole upgrade runs as an account with exactly the README's grants."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import relkit
from relkit import BEFORE_MODELS, HERE, HOSTILE, OLDEST, PYTHON

from ragflow_migrate import events
from ragflow_migrate.db.dialect import quote
from ragflow_migrate.errors import ExitCode

SECRET = "Pa55'w\"rd\\%s-{x}-ü模-9f3kQ"  # quotes, backslash, format markers, non-ASCII
README = relkit.HERE.parents[1] / "README.md"


def readme_grants() -> tuple[str, str | None]:
    """The privileges the README's "Privileges" section grants on the database, and on *.*."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Privileges"):]
    on_db = re.search(r"GRANT ([A-Z, ]+) ON `rag_flow`\.\*", section).group(1)
    global_ = re.search(r"GRANT ([A-Z, ]+) ON \*\.\*", section)
    return on_db, global_.group(1) if global_ else None


def _account(server, database, name: str, password: str = SECRET, process: bool = True,
             readme: bool = True) -> dict[str, str]:
    """An account with exactly the README's grants (without the optional global ones unless
    ``process``); ``readme=False``: all privileges on the database instead."""
    on_db, global_ = readme_grants() if readme else ("ALL PRIVILEGES", "PROCESS")
    grants = [f"{on_db} ON {quote(database)}.*"]
    if process and global_:
        grants.append(f"{global_} ON *.*")
    server.create_user(name, password, grants)
    return server.env(database, name, password)


def _assert_no_secret(*texts: str, secret: str = SECRET) -> None:
    fragments = {secret, json.dumps(secret)[1:-1], secret.replace("\\", "\\\\")}
    for text in texts:
        for fragment in fragments:
            assert fragment not in text, f"secret found:\n{text[max(0, text.find(fragment) - 300):][:600]}"


def _cmdlines() -> str:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                pass
    return "\n".join(out)


def test_no_secret_in_logs_errors_arguments_or_termination_message(old_db, forkrun, tmp_path):
    database = old_db(OLDEST)
    server = database.server
    user = f"sec_{database.name[-6:]}"
    env = _account(server, database.name, user, readme=False)
    term = tmp_path / "termination-log"
    password_file = tmp_path / "password"
    password_file.write_text(SECRET + "\n")
    try:
        # a real process: what `ps` and /proc/<pid>/cmdline show while it works
        full = relkit.tool_env({**env, "RAGFLOW_MIGRATE_TERMINATION_LOG": str(term), "RAGFLOW_MIGRATE_LOG_LEVEL":
                                "debug"})
        with open(tmp_path / "out", "w") as out_file, open(tmp_path / "err", "w") as err_file:
            proc = subprocess.Popen([PYTHON, "-m", "ragflow_migrate", "run", "--password-file", str(password_file)],
                                    env={k: v for k, v in full.items() if k != "MYSQL_PASSWORD"},
                                    stdout=out_file, stderr=err_file)
            seen_args = []
            while proc.poll() is None:
                try:
                    seen_args.append(Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode("utf-8", "replace"))
                except OSError:
                    pass
                seen_args.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
                time.sleep(0.2)
        out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
        assert proc.returncode == 0, out + err
        assert len(seen_args) >= 2
        outputs = [out, err, term.read_text(), *seen_args]

        # failures: wrong password (same length), lock timeout, interrupted, an internal error carrying it
        wrong = forkrun.run({**env, "MYSQL_PASSWORD": SECRET[::-1]}, "run")
        assert wrong.code == ExitCode.AUTH
        outputs += [wrong.stdout, wrong.stderr]
        _assert_no_secret(*outputs, secret=SECRET[::-1])
        holder = server.connect()
        try:
            holder.cursor().execute("SELECT GET_LOCK('sec-lock', 0)")
            timeout = forkrun.run({**env, "RAGFLOW_MIGRATE_LOCK_NAME": "sec-lock", "RAGFLOW_MIGRATE_LOCK_TIMEOUT": "1",
                                   "RAGFLOW_MIGRATE_LOCK_POLL": "0.3"}, "schema", "apply")
        finally:
            holder.close()
        outputs += [timeout.stdout, timeout.stderr]
        for verb in (("status", "--json"), ("plan",), ("schema", "diff", "--json"), ("wait",)):
            r = forkrun.run({**env, "RAGFLOW_MIGRATE_LOG_LEVEL": "debug"}, *verb)
            assert r.code in (0, ExitCode.DRIFT), r.explain()
            outputs += [r.stdout, r.stderr]
        injected_term = tmp_path / "termination-injected"
        injected = subprocess.run([PYTHON, str(HERE / "inject_failure.py"), "run"],
                                  env=relkit.tool_env({**env, "RAGFLOW_MIGRATE_TERMINATION_LOG": str(injected_term)}),
                                  capture_output=True, text=True, timeout=120)
        assert injected.returncode == ExitCode.INTERNAL, injected.stdout + injected.stderr
        assert "driver failed" in injected.stdout and '"exception"' in injected.stdout  # the traceback is there
        outputs += [injected.stdout, injected.stderr, injected_term.read_text()]
        argv = forkrun.run(env, "run", "--password", SECRET)  # the flag that does not exist
        assert argv.code == ExitCode.CONFIG
        outputs += [argv.stdout, argv.stderr]
    finally:
        server.drop_user(user)
    _assert_no_secret(*outputs)


def test_a_password_shaped_like_a_placeholder_is_not_echoed(forkrun, tmp_path):
    conf = tmp_path / "service_conf.yaml"
    conf.write_text('mysql:\n  host: 127.0.0.1\n  password: "s3cret${notavar}tail"\n')
    result = forkrun.run({}, "run", "--config", str(conf))
    assert result.code == ExitCode.CONFIG, result.explain()
    assert "mysql.password" in result.summary["error"]
    for fragment in ("s3cret", "${notavar}", "tail"):
        assert fragment not in result.stdout + result.stderr


HOSTILE_POD = "pod'); DROP TABLE tenant; -- \\ %s ü"
HOSTILE_LOCK = "lock' OR '1'='1 \\ %s"
HOSTILE_DB = "rag`flow'; DROP DATABASE mysql; -- ü"


#: Columns the seed fills with hostile text (HOSTILE), the JSON field that holds it (the data stages
#: rewrite the model references beside it), and the user's own table.
HOSTILE_COLUMNS = (("tenant", "id", "name", None), ("user", "id", "nickname", None),
                   ("knowledgebase", "id", "name", None), ("knowledgebase", "id", "parser_config", "note"),
                   ("dialog", "id", "prompt_config", "system"),
                   ("tenant_llm", "tenant_id, llm_factory, llm_name", "api_key", None),
                   ("my`table; DROP", "'x'", "we`ird", None))


def _hostile_texts(server) -> dict[str, list[tuple]]:
    conn = server.connect(HOSTILE_DB)
    try:
        out = {}
        for table, key, column, field in HOSTILE_COLUMNS:
            with conn.cursor() as cur:
                cur.execute(f"SELECT {key}, {quote(column)} FROM {quote(table)}")
                rows = [(*r[:-1], json.loads(r[-1])[field] if field else r[-1]) for r in cur.fetchall()]
                out[f"{table}.{column}"] = sorted(rows, key=repr)
        assert any(h in str(v) for rows in out.values() for row in rows for v in row for h in HOSTILE)
        return out
    finally:
        conn.close()


def test_hostile_contents_and_names_travel_as_parameters_and_quoted_identifiers(server, forkrun, tmp_path):
    server.drop_database(HOSTILE_DB)
    spy = tmp_path / "statements.jsonl"
    try:
        relkit.build_old_database(server, HOSTILE_DB, BEFORE_MODELS, hostile=True)
        conn = server.connect(HOSTILE_DB)
        try:  # a table of the user's own with a hostile name and contents: left alone
            conn.cursor().execute("CREATE TABLE `my``table; DROP` (`we``ird` VARCHAR(64)) ENGINE=InnoDB")
            conn.cursor().execute("INSERT INTO `my``table; DROP` VALUES (%s)", (HOSTILE[2],))
        finally:
            conn.close()
        before = _hostile_texts(server)
        env = {**server.env(HOSTILE_DB), "POD_NAME": HOSTILE_POD, "RAGFLOW_MIGRATE_LOCK_NAME": HOSTILE_LOCK}
        result = forkrun.run(env, "run", spy=spy)
        assert result.code == 0, result.explain()
        assert result.named(events.LOCK_ACQUIRED)[0]["lock"] == HOSTILE_LOCK
        status = forkrun.run(env, "status", "--json")
        assert status.code == 0 and json.loads(status.stdout)["state"] == "up_to_date", status.explain()
        assert _hostile_texts(server) == before  # byte for byte
        # and the keys reach the model tables unchanged
        hostile_keys = {k for (*_, k) in before["tenant_llm.api_key"] if k and any(h in k for h in HOSTILE)}
        instance_keys = {r[0] for r in server.query("SELECT api_key FROM tenant_model_instance",
                                                    database=HOSTILE_DB)}
        assert hostile_keys and hostile_keys <= instance_keys, hostile_keys - instance_keys
    finally:
        server.ensure_running().drop_database(HOSTILE_DB)
    statements = [json.loads(line) for line in spy.read_text().splitlines()]
    assert len(statements) > 100
    values = [HOSTILE_POD, HOSTILE_LOCK, *HOSTILE]
    for st in statements:
        for value in values:
            assert value not in st["sql"], f"a value is part of the SQL text, not a parameter: {st['sql'][:300]}"
        assert HOSTILE_DB not in st["sql"], f"the database name is not quoted: {st['sql'][:300]}"
    assert any("lock' OR '1'='1" in (st["args"] or "") for st in statements)  # bound, not spliced
    assert any("pod'); DROP" in (st["args"] or "") for st in statements)


def test_least_privileges_run_the_whole_upgrade(old_db, reference, forkrun):
    """Exactly the grants the README's "Privileges" section lists, read from the README itself,
    and nothing more: the oldest release goes all the way to the target."""
    want = reference(OLDEST)
    database = old_db(OLDEST)
    server = database.server
    user = f"least_{database.name[-6:]}"
    env = _account(server, database.name, user, "least-pass-1")
    try:
        grants = [r[0] for r in server.query(f"SHOW GRANTS FOR '{user}'@'%'")]
        assert len(grants) == 2 and any(" ON *.* " in g for g in grants), grants  # PROCESS, the database: all
        result = forkrun.run(env, "run")
        assert result.code == 0, result.explain()
        again = forkrun.run(env, "run")
        assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()
        status = forkrun.run(env, "status", "--check")
        assert status.code == 0, status.explain()
    finally:
        server.drop_user(user)
    relkit.assert_same_end_state(server, database.name, want, "as the least-privileged account")


def test_without_the_optional_process_privilege(old_db, reference, forkrun):
    want = reference(BEFORE_MODELS)
    database = old_db(BEFORE_MODELS)
    user = f"noproc_{database.name[-6:]}"
    env = _account(database.server, database.name, user, "noproc-pass-1", process=False)
    try:
        result = forkrun.run(env, "run")
    finally:
        database.server.drop_user(user)
    assert result.code == 0, result.explain()
    relkit.assert_same_end_state(database.server, database.name, want, "without PROCESS")


@pytest.mark.parametrize("grant", ["ALTER", "CREATE", "INDEX"])
def test_which_ddl_grants_the_upgrade_needs(old_db, forkrun, grant):
    """Without ALTER or CREATE the upgrade from v0.20.0 stops at the preflight, before anything is
    written, with the privilege code and the GRANT to run. INDEX is not needed: indexes are made by
    CREATE TABLE and ALTER TABLE (the README's list should not ask for it)."""
    database = old_db(OLDEST)
    user = f"no{grant.lower()}_{database.name[-6:]}"
    privileges = [p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "INDEX", "DROP",
                              "CREATE TEMPORARY TABLES") if p != grant]
    database.server.create_user(user, "pw-1", [f"{', '.join(privileges)} ON `{database.name}`.*"])
    try:
        result = forkrun.run(database.server.env(database.name, user, "pw-1"), "run")
    finally:
        database.server.drop_user(user)
    if grant == "INDEX":
        assert result.code == 0, result.explain()
        return
    assert result.code == ExitCode.AUTH, result.explain()
    assert result.summary["error"].startswith("preflight: ") and f"lacks {grant}" in result.summary["error"]
    assert f"GRANT {grant} ON" in result.summary["hint"] and "Privileges" in result.summary["hint"]
    assert not result.named("lock.acquired") and not result.named("step.started")
