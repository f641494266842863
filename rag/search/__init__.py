"""Ranking: filters, signals, fusion, evidence, duplicates, the graph and context packs; the retriever orchestrates."""
