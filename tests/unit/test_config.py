"""Configuration: precedence, validation messages that name their source, secrets."""

from __future__ import annotations

import pytest

from ragflow_migrate.config import Secret, load_settings
from ragflow_migrate.errors import ConfigError, ExitCode

BASE = {"MYSQL_HOST": "db.example", "RAGFLOW_MIGRATE_CONFIG": "/nonexistent-default-is-not-used"}


def settings(env=None, flags=None, tmp_conf=None):
    environ = {"MYSQL_HOST": "db.example"}
    environ.update(env or {})
    if tmp_conf is not None:
        environ["RAGFLOW_MIGRATE_CONFIG"] = str(tmp_conf)
    return load_settings(flags or {}, environ)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_follow_ragflow():
    s = settings()
    assert (s.host, s.port, s.user, s.database) == ("db.example", 3306, "root", "rag_flow")
    assert s.lock_name == "init_database_tables"
    assert s.target_version == "v0.27.0"
    assert s.sources["port"] == "default"
    assert s.sources["host"] == "env MYSQL_HOST"


def test_precedence_flag_over_env_over_yaml_over_default(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "mysql:\n  host: yaml-host\n  port: 3310\n  user: yaml-user\n"
                 "  name: yaml_db\n  password: yaml-pw\n")
    s = load_settings({"port": "3312"}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "MYSQL_USER": "env-user"})
    assert s.host == "yaml-host"
    assert s.port == 3312 and s.sources["port"] == "flag --port"
    assert s.user == "env-user" and s.sources["user"] == "env MYSQL_USER"
    assert s.database == "yaml_db" and s.sources["database"] == f"{conf}:mysql.name"
    assert s.password.reveal() == "yaml-pw"


def test_local_service_conf_replaces_top_level_sections(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "mysql:\n  host: base\n  port: 3310\nredis:\n  host: r\n")
    write(tmp_path / "local.service_conf.yaml", "mysql:\n  host: local\n")
    s = load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf)})
    assert s.host == "local"
    assert s.port == 3306  # the whole `mysql:` section was replaced, as RAGFlow does
    assert s.config_files == (str(conf), str(tmp_path / "local.service_conf.yaml"))


def test_malformed_yaml_names_file_and_line(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "mysql:\n  host: a\n  port: [3306\n")
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf)})
    assert f"{conf}:" in err.value.message and "malformed YAML" in err.value.message
    assert err.value.exit_code == ExitCode.CONFIG
    assert ":3:" in err.value.message or ":4:" in err.value.message


@pytest.mark.parametrize(
    ("yaml_text", "words"),
    [
        ("mysql:\n  port: abc\n", "mysql.port: 'abc' is not a port number"),
        ("mysql:\n  port: 70000\n", "out of range"),
        ("mysql:\n  passwrd: x\n", "mysql.passwrd: unknown key"),
        ("mysql: 5\n", "mysql: expected a mapping"),
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("mysql:\n  host: ${MYSQL_HOST:-mysql}\n", "unexpanded placeholder"),
        ("mysql:\n  name: ''\n", "mysql.name: the database name must not be empty"),
        ("mysql:\n  host: [a, b]\n", "mysql.host: expected a string"),
        ("ragflow_migrate:\n  lock_timout: 5\n", "ragflow_migrate.lock_timout: unknown key"),
        ("ragflow_migrate:\n  lock_timeout: soon\n", "is not a duration"),
    ],
)
def test_bad_yaml_values_name_file_and_key(tmp_path, yaml_text, words):
    conf = write(tmp_path / "service_conf.yaml", yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "MYSQL_HOST": "h"})
    assert words in err.value.message
    assert str(conf) in err.value.message


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MYSQL_PORT": "33o6"}, "env MYSQL_PORT: '33o6' is not a port number"),
        ({"MYSQL_PORT": "0"}, "env MYSQL_PORT: 0 is out of range"),
        ({"MYSQL_DBNAME": ""}, "env MYSQL_DBNAME: the database name must not be empty"),
        ({"MYSQL_DBNAME": "a/b"}, "characters MySQL refuses"),
        ({"MYSQL_DBNAME": "x" * 65}, "MySQL allows 64"),
        ({"MYSQL_HOST": ""}, "env MYSQL_HOST: must not be empty"),
        ({"MYSQL_HOST": "a b"}, "not a host name"),
        ({"RAGFLOW_MIGRATE_LOCK_TIMEOUT": "-5"}, "is not a duration"),
        ({"RAGFLOW_MIGRATE_TARGET_VERSION": "v9.9.9"}, "unknown RAGFlow release 'v9.9.9'"),
        ({"RAGFLOW_MIGRATE_TARGET_VERSION": "latest"}, "not a release number"),
        ({"RAGFLOW_MIGRATE_CREATE_DATABASE": "maybe"}, "is not a boolean"),
        ({"RAGFLOW_MIGRATE_BATCH_SIZE": "0"}, "must be at least 1"),
        ({"RAGFLOW_MIGRATE_SESSIONS": "0"}, "env RAGFLOW_MIGRATE_SESSIONS: 0 must be at least 1"),
        ({"RAGFLOW_MIGRATE_SESSIONS": "17"}, "env RAGFLOW_MIGRATE_SESSIONS: 17 is more than 16"),
        ({"RAGFLOW_MIGRATE_SESSIONS": "two"}, "'two' is not a whole number"),
        ({"RAGFLOW_MIGRATE_LOG_FORMAT": "xml"}, "is not one of auto, json, console"),
        ({"RAGFLOW_MIGRATE_CONFIG": "/no/such/file.yaml"}, "config file /no/such/file.yaml does not exist"),
        ({"RAGFLOW_MIGRATE_PASSWORD_FILE": "/no/such/secret"}, "password file /no/such/secret does not exist"),
    ],
)
def test_bad_environment_values_name_the_variable(env, words):
    environ = {"MYSQL_HOST": "h", **env}
    with pytest.raises(ConfigError) as err:
        load_settings({}, environ)
    assert words in err.value.message


def test_sessions_default_to_two_and_are_read_from_flag_or_environment():
    assert load_settings({}, {"MYSQL_HOST": "h"}).sessions == 2
    assert load_settings({}, {"MYSQL_HOST": "h", "RAGFLOW_MIGRATE_SESSIONS": "1"}).sessions == 1
    assert load_settings({"sessions": "16"}, {"MYSQL_HOST": "h", "RAGFLOW_MIGRATE_SESSIONS": "1"}).sessions == 16


def test_bad_flag_names_the_flag():
    with pytest.raises(ConfigError) as err:
        load_settings({"lock_timeout": "forever"}, {"MYSQL_HOST": "h"})
    assert err.value.message.startswith("flag --lock-timeout:")


def test_overridden_bad_value_still_fails(tmp_path):
    """A malformed file is an error even when a higher source overrides the value."""
    conf = write(tmp_path / "service_conf.yaml", "mysql:\n  port: nope\n")
    with pytest.raises(ConfigError):
        load_settings({"port": "3306"}, {"RAGFLOW_MIGRATE_CONFIG": str(conf), "MYSQL_HOST": "h"})


def test_missing_host_is_an_error_with_a_hint():
    with pytest.raises(ConfigError) as err:
        load_settings({}, {})
    assert "no MySQL host" in err.value.message
    assert "MYSQL_HOST" in err.value.hint


def test_password_file_wins_and_trailing_newline_is_trimmed(tmp_path):
    secret = write(tmp_path / "pw", "s3cr3t-from-file\n")
    s = load_settings({}, {"MYSQL_HOST": "h", "MYSQL_PASSWORD": "from-env",
                           "RAGFLOW_MIGRATE_PASSWORD_FILE": str(secret)})
    assert s.password.reveal() == "s3cr3t-from-file"
    assert s.sources["password"] == f"file {secret}"


def test_secret_never_shows():
    s = load_settings({}, {"MYSQL_HOST": "h", "MYSQL_PASSWORD": "hunter2-long"})
    assert "hunter2-long" not in repr(s)
    assert "hunter2-long" not in str(s.describe())
    assert repr(Secret("x")) == "Secret('***')"
    assert s.describe()["password_set"] is True


@pytest.mark.parametrize(("raw", "seconds"), [("30", 30.0), ("2.5", 2.5), ("500ms", 0.5), ("10m", 600.0), ("1h", 3600.0)])
def test_durations(raw, seconds):
    s = load_settings({"lock_timeout": raw}, {"MYSQL_HOST": "h"})
    assert s.lock_timeout == seconds


def test_pod_name_identifies_the_runner():
    s = load_settings({}, {"MYSQL_HOST": "h", "POD_NAME": "ragflow-7c9f-abcde"})
    assert s.instance == "ragflow-7c9f-abcde"


def test_tool_settings_from_yaml_section(tmp_path):
    conf = write(tmp_path / "service_conf.yaml", "mysql:\n  host: h\nragflow_migrate:\n  lock_timeout: 2m\n")
    s = load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf)})
    assert s.lock_timeout == 120.0
