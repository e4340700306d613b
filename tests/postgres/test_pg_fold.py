"""The name folding the PostgreSQL data stages use twice: in SQL (``pg_temp.rm_fold``) and in Python
(``fold_text``, for values folded once before they reach the server, e.g. the catalogue's names in
the merge). Both must give the same text, or the same name would match on one side only."""

from __future__ import annotations

from ragflow_migrate.backends.postgres.data import base

NAMES = ["gpt-4o", "GPT-4o", "Qwen-Max ", "qwen-max", "Émbed-Ünïcode", "ÀÉÎÕÜ àéîõü çÇñÑ", "straße", "ǅ ǆ ǲ",
         "x  ", " leading", "İstanbul", "ΣΊΣΥΦΟΣ", "日本語モデル", "", "deepseek-r1@DeepSeek", "ﬁ-ligature"]


def test_the_sql_and_the_python_folding_agree(pg_server, pg_database):
    with pg_server.connect(pg_database) as conn:
        conn.execute(base.FOLD_FUNCTION)
        got = [conn.execute("SELECT pg_temp.rm_fold(%s)", (name,)).fetchone()[0] for name in NAMES]
    assert got == [base.fold_text(name) for name in NAMES]
    assert base.fold_text("Émbed-Ünïcode ") == "embed-unicode"
