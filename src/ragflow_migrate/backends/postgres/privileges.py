"""What the migration role lacks on PostgreSQL, as the statements an operator should run.

On PostgreSQL, ``ALTER TABLE``, ``CREATE INDEX`` and ``DROP INDEX`` need **ownership** of the
table (or membership in the owner's role); no GRANT gives them. So the check is not a list of
privileges as on MySQL but: may this role act as the owner of every table in schema ``public``,
create in that schema (since PostgreSQL 15 only the database owner may by default), and connect
to the database.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from .connect import query

_ROLE_SQL = ("SELECT current_user, current_database(), has_database_privilege(current_database(), 'CONNECT'), "
             "has_schema_privilege('public', 'CREATE')")
# Tables (plain and partitioned) of schema public whose owner this role cannot act as.
_NOT_OWNED_SQL = ("SELECT pg_get_userbyid(c.relowner), c.relname FROM pg_class c "
                  "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
                  "AND NOT pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY 1, 2")


def missing(conn: psycopg.Connection) -> list[str]:
    """Statements that would give the current role what a migration needs; [] when it has it all.

    A table owned by another role gets ``GRANT <owner> TO <user>`` (one per owner: RAGFlow's tables
    normally share one), with the per-table alternative ``ALTER TABLE … OWNER TO`` named in a comment."""
    (user, database, can_connect, can_create), = query(conn, _ROLE_SQL)
    role = _ident(conn, user)
    needed: list[str] = []
    if not can_connect:
        needed.append(f"GRANT CONNECT ON DATABASE {_ident(conn, database)} TO {role}")
    if not can_create:
        needed.append(f"GRANT CREATE ON SCHEMA public TO {role}")
    owners: dict[str, list[str]] = {}
    for owner, table in query(conn, _NOT_OWNED_SQL):
        owners.setdefault(owner, []).append(table)
    for owner, tables in owners.items():
        needed.append(f"GRANT {_ident(conn, owner)} TO {role}  -- owner of {', '.join(tables)}; or, per table: "
                      f"ALTER TABLE public.<table> OWNER TO {role}")
    return needed


def _ident(conn: psycopg.Connection, name: str) -> str:
    return sql.Identifier(name).as_string(conn)
