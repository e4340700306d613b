"""RAGFlow v0.23.0: evaluations (retired again in v0.27.0) and memories."""

import peewee as pw

from ragflow_migrate.schema.fields import BaseModel, DataBaseModel, LongTextField


def migrate(migrator, database, *, fake=False):
    class EvaluationCase(BaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        create_date = pw.DateTimeField(null=True, index=True)
        update_time = pw.BigIntegerField(null=True, index=True)
        update_date = pw.DateTimeField(null=True, index=True)
        dataset_id = pw.CharField(max_length=32, index=True)
        question = pw.TextField()
        reference_answer = pw.TextField(null=True)
        relevant_doc_ids = LongTextField(null=True)
        relevant_chunk_ids = LongTextField(null=True)
        metadata = LongTextField(null=True)
        create_time = pw.BigIntegerField()

        class Meta:
            table_name = "evaluation_cases"

    class EvaluationDataset(BaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        create_date = pw.DateTimeField(null=True, index=True)
        update_date = pw.DateTimeField(null=True, index=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=255, index=True)
        description = pw.TextField(null=True)
        kb_ids = LongTextField()
        created_by = pw.CharField(max_length=32, index=True)
        create_time = pw.BigIntegerField(index=True)
        update_time = pw.BigIntegerField()
        status = pw.IntegerField()

        class Meta:
            table_name = "evaluation_datasets"

    class EvaluationResult(BaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        create_date = pw.DateTimeField(null=True, index=True)
        update_time = pw.BigIntegerField(null=True, index=True)
        update_date = pw.DateTimeField(null=True, index=True)
        run_id = pw.CharField(max_length=32, index=True)
        case_id = pw.CharField(max_length=32, index=True)
        generated_answer = pw.TextField()
        retrieved_chunks = LongTextField()
        metrics = LongTextField()
        execution_time = pw.FloatField()
        token_usage = LongTextField(null=True)
        create_time = pw.BigIntegerField()

        class Meta:
            table_name = "evaluation_results"

    class EvaluationRun(BaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        create_date = pw.DateTimeField(null=True, index=True)
        update_time = pw.BigIntegerField(null=True, index=True)
        update_date = pw.DateTimeField(null=True, index=True)
        dataset_id = pw.CharField(max_length=32, index=True)
        dialog_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=255)
        config_snapshot = LongTextField()
        metrics_summary = LongTextField(null=True)
        status = pw.CharField(max_length=32)
        created_by = pw.CharField(max_length=32, index=True)
        create_time = pw.BigIntegerField(index=True)
        complete_time = pw.BigIntegerField(null=True)

        class Meta:
            table_name = "evaluation_runs"

    class Memory(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        name = pw.CharField(max_length=128)
        avatar = pw.TextField(null=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        memory_type = pw.IntegerField(index=True)
        storage_type = pw.CharField(max_length=32, index=True)
        embd_id = pw.CharField(max_length=128)
        llm_id = pw.CharField(max_length=128)
        permissions = pw.CharField(max_length=16, index=True)
        description = pw.TextField(null=True)
        memory_size = pw.IntegerField()
        forgetting_policy = pw.CharField(max_length=32)
        temperature = pw.FloatField()
        system_prompt = pw.TextField(null=True)
        user_prompt = pw.TextField(null=True)

        class Meta:
            table_name = "memory"

    migrator.create_model(EvaluationCase)
    migrator.create_model(EvaluationDataset)
    migrator.create_model(EvaluationResult)
    migrator.create_model(EvaluationRun)
    migrator.create_model(Memory)


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
