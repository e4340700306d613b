"""Pure rules of the preflight: grants read from SHOW GRANTS, column capacities, the widening type,
and JSON configs whose rewrite would not fit."""

from __future__ import annotations

import json

import pytest

from ragflow_migrate.data import limits
from ragflow_migrate.data.stages.model_ids import _rewrite_page
from ragflow_migrate.db import privileges

NEEDED = {"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "CREATE TEMPORARY TABLES"}


@pytest.mark.parametrize("grants, missing", [
    (["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
      "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION"], set()),
    (["GRANT USAGE ON *.* TO `u`@`%`",
      "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, CREATE TEMPORARY TABLES ON `rag_flow`.* TO `u`@`%`"],
     {"ALTER"}),
    (["GRANT USAGE ON *.* TO `u`@`%`", "GRANT ALL PRIVILEGES ON `rag\\_flow`.* TO `u`@`%`"], set()),
    (["GRANT USAGE ON *.* TO `u`@`%`", "GRANT ALL PRIVILEGES ON `rag%`.* TO `u`@`%`"], set()),
    (["GRANT USAGE ON *.* TO `u`@`%`", "GRANT ALL PRIVILEGES ON `other`.* TO `u`@`%`"], NEEDED),
    (["GRANT SELECT ON *.* TO `u`@`%`", "GRANT INSERT,UPDATE,DELETE,CREATE,ALTER,DROP ON `rag_flow`.* TO `u`@`%`"],
     {"CREATE TEMPORARY TABLES"}),
    (["GRANT APPLICATION_PASSWORD_ADMIN,AUDIT_ADMIN ON *.* TO `root`@`localhost`",
      "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, CREATE TEMPORARY TABLES ON *.* TO `root`@`%`"],
     set()),
])
def test_grants_are_read_for_the_database(grants, missing):
    verdict = privileges.evaluate(grants, "rag_flow", NEEDED)
    assert verdict.certain and set(verdict.missing) == missing


@pytest.mark.parametrize("grants", [
    ["GRANT USAGE ON *.* TO `u`@`%`", "GRANT `migrator`@`%` TO `u`@`%`"],  # a MySQL role
    ["GRANT USAGE ON *.* TO `u`@`%`", "GRANT `migrator` TO `u`@`%`"],  # a MariaDB role
    ["GRANT SELECT ON `rag_flow`.`tenant` TO `u`@`%`"],  # table-level
    ["GRANT SELECT (`id`) ON `rag_flow`.* TO `u`@`%`"],  # column-level
    ["GRANT ALL ON *.* TO `u`@`%`", "REVOKE ALTER ON `rag_flow`.* FROM `u`@`%`"],  # partial revokes
])
def test_grants_it_cannot_evaluate_never_refuse(grants):
    verdict = privileges.evaluate(grants, "rag_flow", NEEDED)
    assert not verdict.certain and not verdict.missing and verdict.why_uncertain


def test_the_grant_to_run_names_what_is_missing():
    text = privileges.grant_statement("rag`flow", {"CREATE TEMPORARY TABLES", "ALTER"})
    assert text == "GRANT ALTER, CREATE TEMPORARY TABLES ON `rag``flow`.* TO <migration user>"


def test_capacities_in_characters_and_bytes():
    varchar = limits.of_type("t", "c", "varchar(512)")
    assert varchar.chars == 512 and varchar.fits(512, 2048) and not varchar.fits(513, 513)
    text = limits.of_type("t", "c", "text")
    assert text.bytes == 65_535 and text.fits(20_000, 65_535) and not text.fits(20_000, 65_536)
    assert limits.of_type("t", "c", "int").chars is None and not limits.is_string(limits.of_type("t", "c", "int"))


@pytest.mark.parametrize("chars, nbytes, others, want", [
    (2_156, 2_156, 5_000, "varchar(2156)"),  # the row still fits: the smallest VARCHAR
    (16_000, 16_000, 5_000, "text"),  # 64 KB more would pass the row limit: TEXT, which holds the bytes
    (30_000, 90_000, 5_000, "mediumtext"),  # multi-byte: more than TEXT's 65,535 bytes
])
def test_the_widened_type_is_the_smallest_that_holds_the_data(chars, nbytes, others, want):
    assert limits.widened_type(chars, nbytes, others) == want


def test_a_json_config_whose_rewrite_would_not_fit_is_left_as_it_is():
    fits = json.dumps({"llm_id": "gpt-4o@OpenAI"})
    big = json.dumps({"llm_id": "gpt-4o@OpenAI", "pad": "x" * 60})
    rows = [(1, fits), (2, big), (3, "{broken")]
    capacity = limits.of_type("search", "search_config", "varchar(80)")
    page = _rewrite_page("search_config", rows, capacity)
    assert [c[0] for c in page["changes"]] == [1] and page["kept"] == [2] and page["broken"] == [3]
    assert json.loads(page["changes"][0][2]) == {"llm_id": "gpt-4o@default@OpenAI"}
    assert _rewrite_page("search_config", rows)["kept"] == []  # no capacity known: rewritten
