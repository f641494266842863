"""Encoders (the `Encoder` protocol, MiniLM, a deterministic fake for unit tests) and the embedding cache.

Nothing here imports torch at import time: `MiniLMEncoder` loads it on the first `encode`.
"""
