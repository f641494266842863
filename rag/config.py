"""One typed configuration, built at the edge (CLI options or API start-up) and passed down.

Nothing below the edge reads environment variables; `Settings.from_env` is the one place that does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .retriever import RetrieverSettings


@dataclass(frozen=True, slots=True)
class Settings:
    index_dir: Path = Path("index")
    library: Path | None = None  # the library a reload rebuilds from (defaults to the manifest's)
    cache_dir: Path | None = None  # the embedding cache a reindex uses (defaults to <index_dir>/cache)
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are given
    admin_token: str | None = None  # POST /admin/reindex is disabled without one
    max_body_bytes: int = 64 * 1024
    retriever: RetrieverSettings = field(default_factory=RetrieverSettings)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """RAG_INDEX_DIR, RAG_LIBRARY, RAG_CACHE_DIR, RAG_CORS_ORIGINS (comma-separated), RAG_ADMIN_TOKEN, RAG_MAX_BODY_BYTES."""
        env = os.environ
        values: dict = {}
        if env.get("RAG_INDEX_DIR"):
            values["index_dir"] = Path(env["RAG_INDEX_DIR"])
        if env.get("RAG_LIBRARY"):
            values["library"] = Path(env["RAG_LIBRARY"])
        if env.get("RAG_CACHE_DIR"):
            values["cache_dir"] = Path(env["RAG_CACHE_DIR"])
        if env.get("RAG_CORS_ORIGINS"):
            values["cors_origins"] = tuple(o.strip() for o in env["RAG_CORS_ORIGINS"].split(",") if o.strip())
        if env.get("RAG_ADMIN_TOKEN"):
            values["admin_token"] = env["RAG_ADMIN_TOKEN"]
        if env.get("RAG_MAX_BODY_BYTES"):
            values["max_body_bytes"] = int(env["RAG_MAX_BODY_BYTES"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
