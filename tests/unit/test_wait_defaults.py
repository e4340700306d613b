"""The wait deadline's default depends on the verb: short for the read-only ones, long for the work."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragflow_migrate import cli
from ragflow_migrate.config import READ_ONLY_WAIT_TIMEOUT, SPECS, load_settings

LONG = SPECS["wait_timeout"].default
ENV = {"MYSQL_HOST": "db.example"}


def verb_default(argv: list[str]) -> float:
    """The wait deadline main() would use for ``argv`` when nothing configures one."""
    args = cli.build_parser().parse_args(argv)
    return load_settings({}, ENV, wait_timeout_default=cli._wait_default(cli._handler_key(args), args)).wait_timeout


@pytest.mark.parametrize("argv", [
    ["status"], ["status", "--check"], ["status", "--json"], ["plan"], ["plan", "--json"], ["run", "--dry-run"],
    ["schema", "diff"], ["schema", "diff", "--strict"], ["data"], ["data", "--dry-run"], ["data", "--list-stages"],
])
def test_read_only_verbs_wait_briefly(argv):
    assert READ_ONLY_WAIT_TIMEOUT == 10.0
    assert verb_default(argv) == READ_ONLY_WAIT_TIMEOUT


@pytest.mark.parametrize("argv", [
    ["run"], ["wait"], ["wait-for-version"], ["schema", "apply"], ["schema", "apply", "--drop"],
    ["data", "--execute"], ["data", "--create-table-only"],
])
def test_verbs_that_do_the_work_keep_the_long_default(argv):
    assert LONG == 300.0
    assert verb_default(argv) == LONG


def test_the_short_default_is_still_a_default():
    s = load_settings({}, ENV, wait_timeout_default=READ_ONLY_WAIT_TIMEOUT)
    assert s.wait_timeout == 10.0 and s.sources["wait_timeout"] == "default"
    assert "wait_timeout" not in s.describe()["sources"]


@pytest.mark.parametrize(("flags", "env", "want", "source"), [
    ({"wait_timeout": "2"}, {}, 2.0, "flag --wait-timeout"),
    ({}, {"RAGFLOW_MIGRATE_WAIT_TIMEOUT": "5m"}, 300.0, "env RAGFLOW_MIGRATE_WAIT_TIMEOUT"),
    ({}, {"RAGFLOW_MIGRATE_WAIT_TIMEOUT": "45"}, 45.0, "env RAGFLOW_MIGRATE_WAIT_TIMEOUT"),
    ({"wait_timeout": "1s"}, {"RAGFLOW_MIGRATE_WAIT_TIMEOUT": "45"}, 1.0, "flag --wait-timeout"),
])
def test_a_configured_deadline_wins_over_the_short_default(flags, env, want, source):
    s = load_settings(flags, {**ENV, **env}, wait_timeout_default=READ_ONLY_WAIT_TIMEOUT)
    assert (s.wait_timeout, s.sources["wait_timeout"]) == (want, source)


def test_a_yaml_deadline_wins_over_the_short_default(tmp_path):
    conf = tmp_path / "service_conf.yaml"
    conf.write_text("mysql:\n  host: yaml-host\nragflow_migrate:\n  wait_timeout: 60\n", encoding="utf-8")
    s = load_settings({}, {"RAGFLOW_MIGRATE_CONFIG": str(conf)}, wait_timeout_default=READ_ONLY_WAIT_TIMEOUT)
    assert s.wait_timeout == 60.0 and s.sources["wait_timeout"].startswith(str(conf))


def test_the_help_and_the_readme_say_so():
    help_text = " ".join(cli._common_options().format_help().split())
    assert "default 300s for run, wait, wait-for-version, schema apply, data --execute; 10s for the read-only " \
        "status, plan, schema diff, data --dry-run" in help_text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| wait deadline |")]
    assert "300s for `run`, `wait`, `wait-for-version`, `schema apply`, `data --execute`" in row
    assert "10s for `status`, `plan`, `schema diff`, `data --dry-run`" in row
