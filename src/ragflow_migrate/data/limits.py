"""How much a column holds, and the smallest type that holds more: for checks and widenings.

A :class:`Target` is a column a data stage writes, with its limit in characters (``VARCHAR``)
or bytes (``TEXT`` types). When the table does not exist yet (a v0.25 database: the v0.26
schema creates ``tenant_model_instance`` before stage 2 runs) the limit is the one the release
declares (``schema/models.py`` through the chain), so a check made before anything runs knows
what each value will meet.

:func:`widened_type` is the rule of ``--widen-columns``: ``VARCHAR(n)`` for the longest value
when the row still fits MySQL's 65,535-byte row limit, else the smallest ``TEXT`` type that
holds its bytes.
"""

from __future__ import annotations

import dataclasses
import re

from ..db.dialect import TEXT_BYTES
from . import sqlkit
from .sqlkit import Meta

#: MySQL's limit on the summed width of a row's columns (TEXT counts as its pointer).
ROW_BYTES = 65_535
#: utf8mb4: at most 4 bytes a character.
MB_MAX = 4
_VARCHAR = re.compile(r"^(?:var)?char\((\d+)\)")
_FIXED = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8, "float": 4,
          "double": 8, "date": 3, "time": 6, "datetime": 8, "timestamp": 7, "year": 1, "bit": 8, "decimal": 16}


@dataclasses.dataclass(frozen=True)
class Target:
    table: str
    column: str
    column_type: str  # varchar(512), text, int …
    chars: int | None  # VARCHAR: characters it holds
    bytes: int | None  # TEXT types: bytes it holds

    def fits(self, chars: int, nbytes: int) -> bool:
        if self.chars is not None and chars > self.chars:
            return False
        return self.bytes is None or nbytes <= self.bytes

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def describe_limit(self) -> str:
        return f"{self.chars} characters" if self.chars is not None else f"{self.bytes} bytes"


def of_type(table: str, column: str, column_type: str) -> Target:
    text = column_type.lower()
    match = _VARCHAR.match(text)
    if match:
        return Target(table, column, text, int(match.group(1)), None)
    base = text.split("(")[0].split()[0]
    return Target(table, column, text, None, TEXT_BYTES.get(base))


def target(meta: Meta, table: str, column: str, release: str) -> Target | None:
    """The column as it is (live), or as ``release`` declares it when its table is not there yet."""
    info = meta.column(table, column) if meta.has_table(table) else None
    if info is not None:
        return of_type(table, column, info.column_type)
    if meta.has_table(table):
        return None  # the table exists without the column: nothing is written there
    from ..schema import chain

    declared = chain.expected_schema(release).tables.get(table)
    col = declared.columns.get(column) if declared else None
    return of_type(table, column, col.type) if col else None


def is_string(target: Target) -> bool:
    return target.chars is not None or target.bytes is not None


def widened_type(needed_chars: int, needed_bytes: int, row_bytes_without: int) -> str:
    """The smallest type holding ``needed_chars`` characters of ``needed_bytes`` bytes at most, given
    the bytes the row's other columns take (:func:`row_bytes`)."""
    varchar_bytes = needed_chars * MB_MAX + (2 if needed_chars * MB_MAX > 255 else 1)
    if row_bytes_without + varchar_bytes <= ROW_BYTES - 64:  # a margin for the row header and NULL bits
        return f"varchar({needed_chars})"
    for name, capacity in TEXT_BYTES.items():
        if name != "tinytext" and needed_bytes <= capacity:
            return name
    return "longtext"


def row_bytes(conn, table: str, without: str) -> int:
    """What MySQL counts against its row limit for ``table``'s columns other than ``without``."""
    rows = sqlkit.query(conn, "SELECT column_name, data_type, character_octet_length FROM information_schema.columns "
                        "WHERE table_schema = DATABASE() AND table_name = %s", (table,))
    total = 0
    for name, data_type, octets in rows:
        if name == without:
            continue
        kind = str(data_type).lower()
        if kind in ("varchar", "varbinary"):
            total += int(octets or 0) + (2 if int(octets or 0) > 255 else 1)
        elif kind in ("char", "binary"):
            total += int(octets or 0)
        elif kind in _FIXED:
            total += _FIXED[kind]
        else:  # TEXT, BLOB, JSON: a pointer of 9 to 12 bytes
            total += 12
    return total
