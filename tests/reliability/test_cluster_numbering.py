"""What a cluster changes about numbering must change nothing in the result.

Galera (``wsrep_auto_increment_control``) and Group Replication step every AUTO_INCREMENT by the
cluster's size, temporary tables included: numbers are no longer consecutive. A stage that paged a
numbered work table by arithmetic (``n BETWEEN k AND k + batch - 1``) wrote about one row in three
on a 3-node Galera cluster, and the next stage skipped the legacy rows of the instances it missed
(22,567 rows at M). On one server the same steps are set globally here, with tiny batches so that
every page boundary is crossed, and the run must end exactly as an uninterrupted default run.
"""

from __future__ import annotations

import pytest
import relkit
from relkit import BEFORE_MODELS


@pytest.mark.parametrize(("increment", "offset"), [(3, 2), (7, 1)])
def test_stepped_auto_increment_ends_as_a_default_run(old_db, reference, server, increment, offset):
    want = reference(BEFORE_MODELS)
    database = old_db(BEFORE_MODELS)
    server.query(f"SET GLOBAL auto_increment_increment = {increment}, auto_increment_offset = {offset}")
    try:
        result = relkit.run_cli({**database.env, "RAGFLOW_MIGRATE_BATCH_SIZE": "2"}, "run")
    finally:
        server.query("SET GLOBAL auto_increment_increment = 1, auto_increment_offset = 1")
    assert result.code == 0, result.explain()
    relkit.assert_same_end_state(server, database.name, want, f"auto_increment_increment={increment}")
