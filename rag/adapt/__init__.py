"""Library-adapted embeddings (`rag adapt`): pairs mined from a library's structure, fine-tuning, validation."""
