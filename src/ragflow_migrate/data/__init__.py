"""RAGFlow's model-data migration (``tenant_llm`` → provider / instance / model), re-implemented.

Seven stages with RAGFlow's names and gates (:mod:`.registry`), each a :class:`~..steps.Step`:
set-based SQL, one transaction per batch, strict, idempotent without the marker, and safe to
resume after a kill at any point. The behavioural standard is
``docs/ragflow-data-migration.md`` (KEEP, FIX and CHOICE items, defects D1–D28).

Module map:

* :mod:`.canonical`: pure rules (canonical key, statuses, type bits, rewrites, reference parsing);
* :mod:`.catalog`: ``llm_factories.json``;
* :mod:`.sqlkit`: SQL rendering, metadata, batches, transactions;
* :mod:`.staging`: session tables of legacy rows and instances with their canonical identity;
* :mod:`.resolve`: stage 7's name → id lookup;
* :mod:`.ddl`: RAGFlow's definitions of the model tables;
* :mod:`.marker` and :mod:`.state`: RAGFlow's marker and our own per-stage record;
* :mod:`.stages`: one module per stage; :mod:`.registry`: order, gates, pending stages;
* :mod:`.commands`: the ``data`` verb.
"""

from __future__ import annotations

from .registry import GATES, STAGE_NAMES, data_steps, nothing_pending

__all__ = ["GATES", "STAGE_NAMES", "data_steps", "nothing_pending"]
