"""Which privileges the migration account lacks on the database, read from ``SHOW GRANTS``.

The preflight asks this before anything is written, so that a missing grant is exit 4 with the
``GRANT`` to run, instead of a failure halfway through. It refuses only when it is sure: grants
it cannot evaluate (roles, partial revokes, table- or column-level grants on this database, a
``SHOW GRANTS`` the server refuses) make the answer "unknown", and the run goes on; the step
that then hits a missing privilege still stops with exit 4.

    >>> missing(conn, "rag_flow", {"SELECT", "ALTER"})
    Verdict(missing=frozenset({'ALTER'}), certain=True, grants=[...])
"""

from __future__ import annotations

import dataclasses
import re

import pymysql

from . import connect as db

#: What ``ALL [PRIVILEGES]`` covers for our purposes.
ALL = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "INDEX",
                 "CREATE TEMPORARY TABLES", "REFERENCES", "LOCK TABLES", "CREATE VIEW", "SHOW VIEW"})

_GRANT = re.compile(r"^GRANT\s+(?P<privs>.+?)\s+ON\s+(?P<what>(?:FUNCTION\s+|PROCEDURE\s+|PACKAGE\s+(?:BODY\s+)?)?"
                    r"(?:`(?:[^`]|``)*`|\*|[A-Za-z0-9_$%]+)\.(?:`(?:[^`]|``)*`|\*|[A-Za-z0-9_$]+))\s+TO\s+",
                    re.IGNORECASE | re.DOTALL)
_ROLE_GRANT = re.compile(r"^GRANT\s+(?:`[^`]*`|'[^']*'|[A-Za-z0-9_]+)(?:@\S+)?(?:\s*,\s*\S+)*\s+TO\s+", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Verdict:
    missing: frozenset[str]
    certain: bool  # False: grants this module cannot evaluate; ``missing`` is then empty
    grants: tuple[str, ...] = ()
    why_uncertain: str | None = None


def missing(conn: pymysql.connections.Connection, database: str, needed: set[str] | frozenset[str]) -> Verdict:
    try:
        grants = tuple(str(r[0]) for r in db.query(conn, "SHOW GRANTS"))
    except pymysql.err.MySQLError as exc:
        return Verdict(frozenset(), False, (), f"SHOW GRANTS failed: {exc}")
    return evaluate(grants, database, needed)


def evaluate(grants: tuple[str, ...] | list[str], database: str, needed: set[str] | frozenset[str]) -> Verdict:
    """The pure part: which of ``needed`` no grant line gives on ``database``."""
    have: set[str] = set()
    grants = tuple(grants)
    for line in grants:
        text = line.strip()
        if text.upper().startswith("REVOKE"):
            return Verdict(frozenset(), False, grants, "partial revokes")
        match = _GRANT.match(text)
        if match is None:
            if _ROLE_GRANT.match(text) and not text.upper().startswith("GRANT PROXY"):
                return Verdict(frozenset(), False, grants, "privileges granted through roles")
            continue
        what = match.group("what")
        if re.match(r"^(FUNCTION|PROCEDURE|PACKAGE)\s", what, re.IGNORECASE):
            continue
        schema, _, table = _split(what)
        if schema != "*" and not _matches(schema, database):
            continue
        if table != "*":
            return Verdict(frozenset(), False, grants, "table-level grants on the database")
        have |= _privileges(match.group("privs"))
        if "(" in match.group("privs"):
            return Verdict(frozenset(), False, grants, "column-level grants")
    return Verdict(frozenset(p for p in needed if p not in have), True, grants)


def grant_statement(database: str, privileges: frozenset[str] | set[str]) -> str:
    ordered = [p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "INDEX",
                           "CREATE TEMPORARY TABLES") if p in privileges]
    ordered += sorted(set(privileges) - set(ordered))
    quoted = "`" + database.replace("`", "``") + "`"
    return f"GRANT {', '.join(ordered)} ON {quoted}.* TO <migration user>"


def _privileges(text: str) -> set[str]:
    out = set()
    for part in re.split(r",(?![^()]*\))", text):
        name = re.sub(r"\s+", " ", part.strip().upper())
        name = re.sub(r"\s*\(.*\)$", "", name)
        if name in ("ALL", "ALL PRIVILEGES"):
            out |= ALL
        elif name:
            out.add(name)
    return out


def _split(what: str) -> tuple[str, str, str]:
    """``db``.``table`` → (db, '.', table), unquoted; wildcards stay as written."""
    parts = re.findall(r"`((?:[^`]|``)*)`|(\*)|([A-Za-z0-9_$%]+)", what)
    names = [(a.replace("``", "`") if a else b or c) for a, b, c in parts]
    if len(names) != 2:
        return "?", ".", "?"
    return names[0], ".", names[1]


def _matches(pattern: str, database: str) -> bool:
    """A grant's database name: ``%`` and ``_`` are wildcards unless escaped with a backslash."""
    regex = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, database) is not None
