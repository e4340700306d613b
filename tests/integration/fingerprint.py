"""A database's fingerprint: every table's SHOW CREATE TABLE and CHECKSUM TABLE.

Equal fingerprints before and after a refused run prove that it changed nothing: the same
tables, the same definitions, the same rows (the preflight's promise).
"""

from __future__ import annotations

from typing import Any


def fingerprint(conn: Any) -> dict[str, tuple[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "ORDER BY table_name")
        tables = [r[0] for r in cur.fetchall()]
        out = {}
        for table in tables:
            quoted = "`" + table.replace("`", "``") + "`"
            cur.execute(f"SHOW CREATE TABLE {quoted}")
            create = cur.fetchone()[1]
            cur.execute(f"CHECKSUM TABLE {quoted}")
            out[table] = (create, cur.fetchone()[1])
    return out


def differences(before: dict[str, tuple[str, Any]], after: dict[str, tuple[str, Any]]) -> list[str]:
    found = [f"table {t} appeared" for t in sorted(set(after) - set(before))]
    found += [f"table {t} vanished" for t in sorted(set(before) - set(after))]
    for t in sorted(set(before) & set(after)):
        if before[t][0] != after[t][0]:
            found.append(f"table {t}: definition changed")
        if before[t][1] != after[t][1]:
            found.append(f"table {t}: rows changed")
    return found
