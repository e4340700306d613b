"""Real MariaDB 10.11 / MySQL 9.7 servers for the tests: see harness.py and provision.sh."""

from .harness import (
    FLAVORS,
    LABELS,
    PROVISION_HINT,
    MariaDBServer,
    MySQLServer,
    ProvisioningError,
    Server,
    ServerError,
    running,
    schema_path,
    schema_root,
    split_sql,
    start_server,
)

__all__ = [
    "FLAVORS",
    "LABELS",
    "PROVISION_HINT",
    "MariaDBServer",
    "MySQLServer",
    "ProvisioningError",
    "Server",
    "ServerError",
    "running",
    "schema_path",
    "schema_root",
    "split_sql",
    "start_server",
]
