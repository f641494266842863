"""Named tables of retriever variants that `rag eval --variants TABLE` measures (rag.evaluation.sweep).

A table is a list of variants, each a name, a line saying what it changes and the `RetrieverSettings` it runs;
the first row of every table is the default retriever, which every other row is compared with. What a
variant changes in the settings is also derived from the settings themselves (`changes`), so the reports show
both the intent and the exact change.

- `ablation` (eval/ablation.md): each signal of the schema taken out, or muted, one at a time.
- `tuning` (eval/tuning.md): the decisions behind the ranking defaults of `rag.config.RetrieverSettings`,
  re-measured: each row moves one default to the alternative it was chosen over (or a few points around it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from rag.config import RetrieverSettings
from rag.evaluation.harness import VARIANTS as RETRIEVERS

DEFAULT = RetrieverSettings()  # the product's default: the learned fusion (round 2)
CONVEX = DEFAULT.with_(fusion="convex")  # the round-1 convex fusion: the learned fusion's base, and the tuning table's
W = dict(DEFAULT.weights)
R = dict(DEFAULT.role_weights)


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    what: str
    settings: RetrieverSettings


@dataclass(frozen=True, slots=True)
class VariantTable:
    name: str
    title: str
    about: tuple[str, ...]  # the report's prose header, one paragraph an entry
    variants: tuple[Variant, ...]  # the first is the default retriever

    @property
    def default(self) -> Variant:
        return self.variants[0]

    def select(self, rows: Sequence[str] = ()) -> tuple[Variant, ...]:
        """The default row and the named rows, in the table's order (every row when none is named).
        KeyError names the first row that is not in the table."""
        names = {v.name for v in self.variants}
        for row in rows:
            if row not in names:
                raise KeyError(row)
        return tuple(v for i, v in enumerate(self.variants) if i == 0 or not rows or v.name in rows)


def _without(name: str) -> dict[str, float]:
    return {k: v for k, v in W.items() if k != name}


def _weights(**changes: float) -> RetrieverSettings:
    return CONVEX.with_(weights={**W, **changes})


ABLATION = VariantTable(
    "ablation",
    "Ablation: each signal's contribution",
    (
        "Each row changes one thing in the default retriever: a retriever left out, a kind of chunk muted in the "
        "dense retriever, names without aliases, another fusion, or one retriever alone.",
    ),
    (
        Variant("hybrid (default)", "all four retrievers, learned fusion", DEFAULT),
        Variant("convex fusion (round 1)", "no learned corrections: the convex combination alone", CONVEX),
        Variant("- dense", "no dense retriever", DEFAULT.with_(weights=_without("dense"))),
        Variant("- full-text BM25", "no full-text BM25", DEFAULT.with_(weights=_without("fulltext"))),
        Variant(
            "- keyword BM25 (search hints)",
            "no BM25 over title, aliases, vector_keywords, tension",
            DEFAULT.with_(weights=_without("keywords")),
        ),
        Variant("- names", "no known-name matching or pinning", DEFAULT.with_(weights=_without("names"), name_pin=2.0)),
        Variant("- aliases as names", "names match titles only", DEFAULT.with_(name_aliases=False)),
        Variant(
            "- tension+keywords chunk",
            "dense ignores the primary tension / vector keywords chunk",
            DEFAULT.with_(role_weights={**R, "tension": 0.0}),
        ),
        Variant(
            "- context-label chunks", "dense ignores the context-label chunks", DEFAULT.with_(role_weights={**R, "context-label": 0.0})
        ),
        Variant("- summary chunk", "dense ignores the summary chunk", DEFAULT.with_(role_weights={**R, "summary": 0.0})),
        Variant(
            "- section-role weights", "no down-weighting of Known Uses, Vitality, Cognitive Era chunks", DEFAULT.with_(role_weights={})
        ),
        Variant(
            "+ problem/context roles x1.1",
            "dense also favours Problem and Context sections",
            DEFAULT.with_(role_weights={**R, "problem": 1.1, "context": 1.1}),
        ),
        Variant("- dense support", "a pattern's dense score is its best chunk only", DEFAULT.with_(dense_support=0.0)),
        Variant(
            "rrf k=60 (equal weights)",
            "reciprocal rank fusion instead of convex",
            DEFAULT.with_(fusion="rrf", rrf_k=60.0, weights={k: 1.0 for k in W}),
        ),
        # the same weights as `rag eval --retriever dense` and `--retriever lexical`
        Variant("dense only", "dense retriever alone", CONVEX.with_(weights=dict(RETRIEVERS["dense"]))),
        Variant("BM25 only (keywords+full text)", "lexical retrievers alone", CONVEX.with_(weights=dict(RETRIEVERS["lexical"]))),
    ),
)

TUNING = VariantTable(
    "tuning",
    "Tuning: the ranking defaults, re-measured",
    (
        "Each row moves one default of `rag.config.RetrieverSettings` to the alternative it was chosen over, or a "
        "few points around it: reciprocal rank fusion instead of convex fusion; each fusion weight around dense 1, "
        "full text 0.5, names 0.5, keywords 0.1; dense support (best chunk + 0.05 x the next four); the "
        "section-role weights of Known Uses, Vitality and Cognitive Era (0.95); the name pin threshold (0.8); "
        'the reader label weights; and the learned fusion (`fusion="learned"`, weights in rag/search/ranker.json).',
        "The reader label weights act only on queries with a context filter, so they move a set's mean little; the "
        "paired test is hardly weakened by the queries they cannot change (those add differences of zero). Choices "
        "made when the index is built (full-text BM25 over the whole pattern, vector keywords in the tension "
        "chunk) are not settings of the retriever and are not in this table.",
    ),
    (
        Variant(
            "convex (round-1 default)",
            "convex fusion (min-max), dense 1, full text 0.5, names 0.5, keywords 0.1: the learned fusion's base",
            CONVEX,
        ),
        Variant(
            "rrf k=60 (equal weights)",
            "reciprocal rank fusion, k=60, every weight 1",
            CONVEX.with_(fusion="rrf", rrf_k=60.0, weights={k: 1.0 for k in W}),
        ),
        Variant(
            "rrf k=5 (equal weights)",
            "reciprocal rank fusion, k=5, every weight 1",
            CONVEX.with_(fusion="rrf", rrf_k=5.0, weights={k: 1.0 for k in W}),
        ),
        Variant(
            "rrf k=10 (tuned weights)",
            "reciprocal rank fusion, k=10, dense 1.5, full text 1, names 1, keywords 0.3",
            CONVEX.with_(fusion="rrf", rrf_k=10.0, weights={"dense": 1.5, "keywords": 0.3, "fulltext": 1.0, "names": 1.0}),
        ),
        Variant("dense 0.7", "dense weight 1 -> 0.7", _weights(dense=0.7)),
        Variant("dense 1.5", "dense weight 1 -> 1.5", _weights(dense=1.5)),
        Variant("full text 0.3", "full-text weight 0.5 -> 0.3", _weights(fulltext=0.3)),
        Variant("full text 0.7", "full-text weight 0.5 -> 0.7", _weights(fulltext=0.7)),
        Variant("full text 1.0", "full-text weight 0.5 -> 1.0", _weights(fulltext=1.0)),
        Variant("names 0.3", "names weight 0.5 -> 0.3", _weights(names=0.3)),
        Variant("names 1.0", "names weight 0.5 -> 1.0", _weights(names=1.0)),
        Variant("keywords 0", "keyword BM25 weight 0.1 -> 0 (off)", _weights(keywords=0.0)),
        Variant("keywords 0.2", "keyword BM25 weight 0.1 -> 0.2", _weights(keywords=0.2)),
        Variant("keywords 0.3", "keyword BM25 weight 0.1 -> 0.3", _weights(keywords=0.3)),
        Variant("dense support 0", "a pattern's dense score is its best chunk only (0.05 -> 0)", CONVEX.with_(dense_support=0.0)),
        Variant("dense support 0.1", "best chunk + 0.1 x the next four (0.05 -> 0.1)", CONVEX.with_(dense_support=0.1)),
        Variant(
            "role weights 1.0",
            "Known Uses, Vitality, Cognitive Era chunks x1.0 (0.95 -> 1.0)",
            CONVEX.with_(role_weights={k: 1.0 for k in R}),
        ),
        Variant(
            "role weights 0.9",
            "Known Uses, Vitality, Cognitive Era chunks x0.9 (0.95 -> 0.9)",
            CONVEX.with_(role_weights={k: 0.9 for k in R}),
        ),
        Variant("name pin 0.85", "names pinned first from trigram similarity 0.85 (0.8 -> 0.85)", CONVEX.with_(name_pin=0.85)),
        Variant("reader label 1.05", "the asked-for context's label chunk x1.05", CONVEX.with_(reader_label_weight=1.05)),
        Variant(
            "reader label 1.1 / other labels 0",
            "the asked-for context's label chunk x1.1, other contexts' label chunks ignored",
            CONVEX.with_(reader_label_weight=1.1, other_label_weight=0.0),
        ),
        Variant("other labels 0.9", "other contexts' label chunks x0.9", CONVEX.with_(other_label_weight=0.9)),
        Variant("learned fusion (default)", "convex score + the linear corrections of rag/search/ranker.json (eval/learned.md)", DEFAULT),
    ),
)

TABLES: dict[str, VariantTable] = {t.name: t for t in (ABLATION, TUNING)}


def changes(settings: RetrieverSettings, default: RetrieverSettings = DEFAULT) -> dict[str, object]:
    """The settings that differ from the default: {field: value}, a mapping field as {key: value} of the keys
    that changed (None for a key taken out); empty for the default itself."""
    out: dict[str, object] = {}
    for f in fields(RetrieverSettings):
        new, old = getattr(settings, f.name), getattr(default, f.name)
        if new == old:
            continue
        if isinstance(new, Mapping) and isinstance(old, Mapping) and new:
            out[f.name] = {k: new.get(k) for k in sorted(set(new) | set(old)) if new.get(k) != old.get(k)}
        else:
            out[f.name] = dict(new) if isinstance(new, Mapping) else new
    return out


def describe(change: Mapping[str, object]) -> str:
    """`changes` as one line: `weights.dense=1.5, fusion=rrf`; a key taken out reads `weights.names=-`."""
    parts = []
    for name, value in change.items():
        if isinstance(value, Mapping) and value:
            parts += [f"{name}.{k}={'-' if v is None else _num(v)}" for k, v in value.items()]
        else:
            parts.append(f"{name}={'{}' if isinstance(value, Mapping) else _num(value)}")
    return ", ".join(parts)


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
