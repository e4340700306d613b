"""RAGFlow v0.26.0: model providers, instances and models (filled by the v0.26 data stages).

`tenant.ocr_id` is VARCHAR(256); RAGFlow's own upgrade path adds it as VARCHAR(128), which is
widened here.
"""

import peewee as pw

from ragflow_migrate.schema.fields import DataBaseModel


def migrate(migrator, database, *, fake=False):
    class TenantModel(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        model_name = pw.CharField(max_length=128, null=True)
        provider_id = pw.CharField(max_length=32)
        instance_id = pw.CharField(max_length=32, index=True)
        model_type = pw.CharField(max_length=32)
        status = pw.CharField(max_length=32)
        extra = pw.CharField(max_length=1024)

        class Meta:
            table_name = "tenant_model"

    class TenantModelGroup(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        group_type = pw.CharField(max_length=32)
        model_name = pw.CharField(max_length=128, null=True)
        strategy = pw.CharField(max_length=32)

        class Meta:
            table_name = "tenant_model_group"

    class TenantModelGroupMapping(DataBaseModel):
        group_id = pw.CharField(max_length=32, index=True)
        provider_id = pw.CharField(max_length=32)
        instance_id = pw.CharField(max_length=32)
        model_id = pw.CharField(max_length=32, index=True)
        weight = pw.IntegerField()
        status = pw.CharField(max_length=32)

        class Meta:
            table_name = "tenant_model_group_mapping"
            primary_key = pw.CompositeKey("group_id", "provider_id", "instance_id", "model_id")

    class TenantModelInstance(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        instance_name = pw.CharField(max_length=128)
        provider_id = pw.CharField(max_length=32)
        api_key = pw.CharField(max_length=512)
        status = pw.CharField(max_length=32)
        extra = pw.CharField(max_length=512)

        class Meta:
            table_name = "tenant_model_instance"

    class TenantModelProvider(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        provider_name = pw.CharField(max_length=128)
        tenant_id = pw.CharField(max_length=32, index=True)

        class Meta:
            table_name = "tenant_model_provider"
            indexes = (
                (
                    (
                        "tenant_id",
                        "provider_name",
                    ),
                    True,
                ),
            )

    migrator.create_model(TenantModel)
    migrator.create_model(TenantModelGroup)
    migrator.create_model(TenantModelGroupMapping)
    migrator.create_model(TenantModelInstance)
    migrator.create_model(TenantModelProvider)

    migrator.add_fields("tenant", ocr_id=pw.CharField(max_length=256, null=True, index=True))
    migrator.change_fields(
        "tenant",
        before={"ocr_id": [pw.CharField(max_length=128, null=True)]},
        ocr_id=pw.CharField(max_length=256, null=True, index=True),
    )


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
