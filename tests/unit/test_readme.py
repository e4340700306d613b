"""The README documents what the code defines: every log event with its fields, every exit code,
every setting."""

from __future__ import annotations

from pathlib import Path

from ragflow_migrate import events
from ragflow_migrate.config import SPECS
from ragflow_migrate.errors import ExitCode

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_event_is_listed_with_its_fields():
    for spec in events.EVENTS.values():
        fields = ", ".join(f"`{f}`" for f in spec.fields)
        assert f"| `{spec.name}` | {spec.description} | {fields} |" in README, spec.name


def test_every_exit_code_is_listed():
    for code in ExitCode:
        assert f"| {code.value} | {code.name.lower()} |" in README, code


def test_every_setting_has_its_flag_and_variable_in_the_table():
    for spec in SPECS.values():
        if spec.flag:
            assert f"`{spec.flag}`" in README, spec.flag
        if spec.name not in ("config",):
            for variable in spec.variables:  # each backend's own (MYSQL_HOST, POSTGRES_HOST), DB_TYPE too
                assert f"`{variable}`" in README, variable
