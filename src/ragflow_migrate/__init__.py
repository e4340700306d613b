"""ragflow-migrate: upgrade a RAGFlow MySQL database, safely and fast, ahead of the RAGFlow pods."""

__version__ = "0.1.0"
