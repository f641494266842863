"""Every frozen settings class, built at the edge (CLI options, environment, API start-up) and passed down.

This module imports nothing from `rag` and reads no environment itself: `Settings.from_env(environ)` parses
a mapping the edge hands it. Each ranking default names the measurement that chose it (eval/tuning.md,
eval/ablation.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

FusionMethod = Literal["rrf", "convex", "learned"]  # learned: convex + the linear corrections of rag/search/ranker.json
VectorKind = Literal["flat", "ivf", "hnsw"]
EngineKind = Literal["embedded", "milvus"]
DeviceKind = Literal["auto", "cpu", "cuda"]  # where the encoder runs; auto: CUDA when torch sees a GPU, else CPU
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DEFAULT_MILVUS_URI = "http://127.0.0.1:19530"  # Milvus Standalone's default gRPC port
MAX_FILE_BYTES = 2 * 1024 * 1024  # a pattern file above this is reported as unusable (the largest commons-os file is 0.34 MB)


# every role a chunk can have (rag.load.sections roles plus the chunker's own summary, tension, context-label)
CHUNK_ROLES: tuple[str, ...] = ("summary", "tension", "context-label", "context", "problem", "solution", "implementation",
                                "consequences", "known-uses", "cognitive-era", "vitality", "other")


@dataclass(frozen=True, slots=True)
class ChunkerSettings:
    max_tokens: int = 256  # the model's window, special tokens included
    special_tokens: int = 2  # [CLS] and [SEP]
    version: int = 2  # bump whenever chunk text or ids change: the manifest records it, so old builds count as stale
    # What gets encoded (issue 14, item 5; eval/bench/chunk-kinds.md measures each kind with query-time masks).
    # Chunks of a skipped role, and windows past `max_windows` of a long section, are neither encoded nor
    # searched as passages; their words still count in the pattern's full-text BM25 document.
    skip_roles: tuple[str, ...] = ()
    max_windows: int = 0  # 0: every window of every section

    @property
    def budget(self) -> int:
        return self.max_tokens - self.special_tokens

    @property
    def selective(self) -> bool:
        return bool(self.skip_roles) or self.max_windows > 0

    def encodes(self, chunk) -> bool:
        """Whether a chunk (rag.records.chunk.Chunk) is encoded and searched."""
        return chunk.role not in self.skip_roles and (self.max_windows <= 0 or chunk.part <= self.max_windows)

    def to_dict(self) -> dict:
        return {"max_tokens": self.max_tokens, "special_tokens": self.special_tokens, "version": self.version,
                "skip_roles": sorted(self.skip_roles), "max_windows": self.max_windows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChunkerSettings:
        """A manifest's chunker (older manifests lack skip_roles and max_windows: they encoded everything)."""
        return cls(max_tokens=int(data.get("max_tokens", 256)), special_tokens=int(data.get("special_tokens", 2)),
                   version=int(data.get("version", cls.version)), skip_roles=tuple(data.get("skip_roles") or ()),
                   max_windows=int(data.get("max_windows") or 0))


@dataclass(frozen=True, slots=True)
class VectorSettings:
    """FAISS index kind and parameters (recorded in the manifest)."""

    kind: VectorKind = "flat"
    nlist: int = 0  # ivf: 0 means about 4 * sqrt(n)
    nprobe: int = 16
    m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    # exact search of a flat index: "blas" scores every row with one matrix product (numpy/OpenBLAS) and
    # hands selective filters to FAISS's bitmap scan; "faiss" always uses FAISS. eval/bench/kernels.md:
    # 83,379 x 384 vectors, k=300, unfiltered: one query BLAS 2.1x faster than FAISS 1.15.1 (its dynamic-
    # dispatch AVX2 build), 32 at once 3.2x faster than one FAISS batch call and 10.8x than 32 single calls.
    kernel: Literal["blas", "faiss"] = "blas"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LexicalSettings:
    """BM25 (Lucene variant) parameters of every lexical index of a build; bm25s' and Lucene's defaults."""

    k1: float = 1.2
    b: float = 0.75
    method: str = "lucene"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MilvusSettings:
    """Where the Milvus engine lives. `token` (user:password or an API key) is never written to the manifest or
    logged; the manifest keeps the URI without credentials. `timeout_s` is per call and must be an int: pymilvus
    uses only an int timeout as its retry budget (a float retries up to 75 times). Collections are named
    `<prefix>_<build>_chunks` and `<prefix>_<build>_patterns`; the alias (where the server has aliases) is
    `<prefix>_current_chunks` / `<prefix>_current_patterns`, so give each index directory its own prefix."""

    uri: str = ""  # "": the index's manifest URI when serving, DEFAULT_MILVUS_URI when building
    token: str | None = field(default=None, repr=False)
    timeout_s: int = 3
    prefix: str = "rag"

    def with_(self, **changes) -> MilvusSettings:
        return replace(self, **changes)

    def at(self, uri: str) -> MilvusSettings:
        """These settings with `uri` where none was given."""
        return self if self.uri else replace(self, uri=uri)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides) -> MilvusSettings | None:
        """RAG_MILVUS_URI, RAG_MILVUS_TOKEN, RAG_MILVUS_TIMEOUT_S, RAG_MILVUS_PREFIX; None when no URI is given
        (then an index names its own URI in its manifest)."""
        values: dict = {}
        for key, name in (("uri", "RAG_MILVUS_URI"), ("token", "RAG_MILVUS_TOKEN"), ("prefix", "RAG_MILVUS_PREFIX")):
            if environ.get(name):
                values[key] = environ[name]
        if environ.get("RAG_MILVUS_TIMEOUT_S"):
            values["timeout_s"] = positive_int("RAG_MILVUS_TIMEOUT_S", environ["RAG_MILVUS_TIMEOUT_S"], "seconds")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values) if values else None


@dataclass(frozen=True, slots=True)
class BuildSettings:
    library: Path
    index_dir: Path
    cache_dir: Path | None = None  # default: <index_dir>/cache
    rebuild: bool = False
    chunker: ChunkerSettings = ChunkerSettings()
    vectors: VectorSettings = VectorSettings()
    lexical: LexicalSettings = LexicalSettings()
    max_file_bytes: int = MAX_FILE_BYTES
    engine: EngineKind = "embedded"
    milvus: MilvusSettings | None = None  # the server of engine="milvus" (default: MilvusSettings())


def _default_weights() -> dict[str, float]:
    # eval/tuning.md, "convex combination (min-max), dense 1, keywords 0.1, full text 0.5, names 0.5":
    # bmn 0.792 -> 0.866, patterns 0.870 -> 0.915 against RRF k=60 with equal weights.
    return {"dense": 1.0, "keywords": 0.1, "fulltext": 0.5, "names": 0.5}


def _default_role_weights() -> dict[str, float]:
    # eval/tuning.md (commons-os table), "role weights Known Uses, Vitality, Cognitive Era x0.95":
    # commons-os 0.595 -> 0.610; bmn and patterns/ within 0.003. These sections match many queries loosely.
    return {"vitality": 0.95, "cognitive-era": 0.95, "known-uses": 0.95}


@dataclass(frozen=True, slots=True)
class RetrieverSettings:
    fusion: FusionMethod = "convex"
    rrf_k: float = 60.0
    weights: dict[str, float] = field(default_factory=_default_weights)
    role_weights: dict[str, float] = field(default_factory=_default_role_weights)
    # eval/tuning.md (commons-os table), "dense support: best chunk + 0.05 x next four": a pattern's dense
    # score is its best chunk plus `dense_support` x the sum of its next `dense_support_chunks` chunks.
    dense_support: float = 0.05
    dense_support_chunks: int = 4
    dense_candidates: int = 300  # chunks fetched from the vector index before aggregation to patterns (eval/tuning.md defaults)
    depth: int = 100  # patterns per signal list entering fusion (eval/tuning.md defaults)
    evidence: int = 3  # evidence passages per hit
    snippet_chars: int = 320  # longest evidence snippet, cut at a word boundary (fits two lines of a result card)
    # eval/tuning.md, "name pin threshold 0.85 -> 0.80 (spelling variants such as 'dematerialisation')".
    name_pin: float = 0.8
    name_min: float = 0.6  # weakest trigram similarity that counts as a name match at all
    name_aliases: bool = True  # eval/ablation.md "- aliases as names": bmn -0.030 without them
    # near-duplicates (group_duplicates): titles whose trigram Dice reaches this are grouped; 0.7 groups
    # "Kanban" with "Kanban Production" style variants in commons-os without merging distinct patterns.
    duplicate_title_dice: float = 0.7
    # Context-aware dense evidence: when a reader context is asked for (the context filter or `reader`),
    # that context's label chunk counts x reader_label_weight and other contexts' label chunks count
    # x other_label_weight (eval/tuning.md, "reader label weights").
    reader_label_weight: float = 1.0
    other_label_weight: float = 1.0
    max_query_chars: int = 2000
    max_k: int = 100

    def with_(self, **changes) -> RetrieverSettings:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Settings:
    """What a server (HTTP or MCP) needs: where the index is, how to listen, limits, the retriever."""

    index_dir: Path = Path("index")
    library: Path | None = None  # the library a reload rebuilds from (defaults to the manifest's)
    cache_dir: Path | None = None  # the embedding cache a reindex uses (defaults to <index_dir>/cache)
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are given
    admin_token: str | None = None  # POST /admin/reindex is disabled without one
    max_body_bytes: int = 64 * 1024
    retriever: RetrieverSettings = field(default_factory=RetrieverSettings)
    # Micro-batching of concurrent searches (rag.serve.batching); batch_max 1 turns it off. Defaults from
    # the HTTP load bench (eval/bench/batching.md, bmn, 2 shared cores): at 32 clients a 2 ms window gave the
    # most throughput of 1, 2 and 5 ms (x1.64 batching off's, p99 x0.55, ~17 requests per batch); 1 and 5 ms
    # were within noise at 8 clients and worse at 32. The goals (p99 <= 6x, throughput >= 4x) were not met there.
    batch_window_ms: float = 2.0
    batch_max: int = 32
    milvus: MilvusSettings | None = None  # overrides a Milvus index's manifest URI; carries the token

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides) -> Settings:
        """RAG_INDEX_DIR, RAG_LIBRARY, RAG_CACHE_DIR, RAG_CORS_ORIGINS (comma-separated), RAG_ADMIN_TOKEN,
        RAG_MAX_BODY_BYTES and the RAG_MILVUS_* variables (MilvusSettings.from_env), from `environ` (the edge
        passes os.environ). A bad value raises ValueError
        whose message starts with the variable's name."""
        env = environ
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
            values["max_body_bytes"] = positive_int("RAG_MAX_BODY_BYTES", env["RAG_MAX_BODY_BYTES"])
        if env.get("RAG_BATCH_WINDOW_MS"):
            values["batch_window_ms"] = float(positive_int("RAG_BATCH_WINDOW_MS", env["RAG_BATCH_WINDOW_MS"], "milliseconds"))
        if env.get("RAG_BATCH_MAX"):
            values["batch_max"] = positive_int("RAG_BATCH_MAX", env["RAG_BATCH_MAX"], "requests")
        values["milvus"] = MilvusSettings.from_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def device_from_env(environ: Mapping[str, str]) -> DeviceKind:
    """RAG_DEVICE: cpu, cuda or auto (the default: CUDA when torch sees a GPU, else CPU); ValueError naming it."""
    value = (environ.get("RAG_DEVICE") or "auto").strip().lower()
    if value not in DEVICES:
        raise ValueError(f"RAG_DEVICE must be one of {', '.join(DEVICES)}, got {environ.get('RAG_DEVICE')!r}")
    return value  # type: ignore[return-value]


def positive_int(name: str, text: str, unit: str = "bytes") -> int:
    """`text` as a whole number above zero, or ValueError naming `name`."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number of {unit}, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be above zero, got {value}")
    return value
