"""The values table of helm/ragflow-migrate/README.md, generated from values.yaml's `## @param` lines.

    python tests/tools/values_table.py            # print the table
    python tests/tools/values_table.py --write    # replace it in the README (between the markers)

tests/chart/test_chart.py checks that the README's table is what this prints.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "ragflow-migrate"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
PARAM = re.compile(r"^\s*## @param (\S+) (.*)$")
SECTION = re.compile(r"^\s*## @section (.*)$")


def _lookup(values: dict, dotted: str):
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def _default(value) -> str:
    text = json.dumps(value, separators=(", ", ": ")) if not isinstance(value, str) else json.dumps(value)
    return f"`{text}`".replace("|", "\\|")


def table() -> str:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    lines: list[str] = []
    for raw in text.splitlines():
        if match := SECTION.match(raw):
            lines += ["", f"### {match.group(1)}", "", "| Name | Description | Default |", "| --- | --- | --- |"]
        elif match := PARAM.match(raw):
            name, description = match.groups()
            description = description.replace("|", "\\|")
            lines.append(f"| `{name}` | {description} | {_default(_lookup(values, name))} |")
    return "\n".join(lines).strip() + "\n"


def main() -> int:
    rendered = table()
    if "--write" not in sys.argv:
        sys.stdout.write(rendered)
        return 0
    readme = CHART / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + rendered + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
