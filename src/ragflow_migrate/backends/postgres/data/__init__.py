"""RAGFlow's model-data migration on PostgreSQL: the seven stages of :mod:`ragflow_migrate.data`
(same names, gates, order, stage record and marker), their SQL written for PostgreSQL."""

from __future__ import annotations

from .id_migration import IdMigrationStage
from .legacy import InstanceStage, LegacyModelStage, ProviderStage
from .merge import MergeStage, SeedingStage
from .model_ids import ModelIdStage

STAGE_CLASSES = (ProviderStage, InstanceStage, LegacyModelStage, ModelIdStage, SeedingStage, MergeStage,
                 IdMigrationStage)

__all__ = ["STAGE_CLASSES"]
