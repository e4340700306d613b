"""The seven stages of RAGFlow's model-data migration, one module each, in RAGFlow's order."""
