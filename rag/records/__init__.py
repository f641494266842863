"""Frozen records that cross stages: patterns and their parts, chunks, search results, the build manifest."""
