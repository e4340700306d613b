"""RAGFlow's data gates and the stages each one runs, by name, in order (spec §1.2).

Names only, so that a stage can ask "has my whole gate finished?" without importing the
registry that imports every stage (:mod:`.registry` checks that its classes match this list).
"""

from __future__ import annotations

GATES: tuple[str, ...] = ("v0.26.0", "v0.27.0")
STAGES: dict[str, tuple[str, ...]] = {
    "v0.26.0": ("tenant_model_provider", "tenant_model_instance", "tenant_model", "model_id_config"),
    "v0.27.0": ("tenant_model_seeding", "model_type_merge", "tenant_model_id_migration"),
}
