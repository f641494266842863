"""Training pairs mined from a library's own structure: the symptom a pattern states next to its remedy.

Kinds (one pair each, when both sides are non-empty):
- `problem`: the Problem section -> the pattern's summary and Solution;
- `context`: the Context section -> the summary and Solution;
- `label`: each context label (corporate, activist, ...) -> the summary;
- `tension`: the primary tension -> the Problem section;
- `alias`: each alias -> the summary;  `title`: the title -> the summary.
Each pair gets one hard negative: the best BM25 match of its anchor among the other training patterns (the
same kind of text: their summary and Solution for a `problem` pair), never a near-duplicate of the positive's
pattern (one slug extends the other, a shared alias or title, or titles' trigram Dice >= NEAR_DUPLICATE_DICE).
Patterns are split into training and held-out by a seeded hash of the slug; held-out pairs are never trained on.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rag.index.lexical import LexicalIndex, analyze
from rag.records.pattern import Pattern, name_key
from rag.search.duplicates import near_duplicates

KINDS = ("problem", "context", "label", "tension", "alias", "title")
NEAR_DUPLICATE_DICE = 0.7  # SearchSettings.duplicate_title_dice: what search groups as near-duplicates
HELD_OUT_SHARE = 0.2  # of the patterns with a summary and a Problem section (validation queries need both)
MIN_HELD_OUT = 1


@dataclass(frozen=True, slots=True)
class Pair:
    kind: str
    slug: str  # the pattern whose text both sides come from
    anchor: str
    positive: str
    negative: str = ""
    negative_slug: str = ""


def remedy(pattern: Pattern) -> str:
    """Summary and Solution: what a `problem` or `context` anchor should find."""
    solution = pattern.section("solution")
    return "\n\n".join(t for t in (pattern.summary.strip(), solution.text.strip() if solution else "") if t)


def _text(pattern: Pattern, role: str) -> str:
    section = pattern.section(role)
    return section.text.strip() if section else ""


def pattern_pairs(pattern: Pattern) -> list[Pair]:
    """Every pair one pattern yields, in KINDS order, without negatives."""
    summary, problem, fix = pattern.summary.strip(), _text(pattern, "problem"), remedy(pattern)
    out: list[Pair] = []

    def add(kind: str, anchor: str, positive: str) -> None:
        if anchor.strip() and positive.strip():
            out.append(Pair(kind, pattern.slug, anchor.strip(), positive.strip()))

    add("problem", problem, fix)
    add("context", _text(pattern, "context"), fix)
    for _, label in pattern.context_labels:
        add("label", label, summary)
    add("tension", pattern.tension, problem)
    for alias in pattern.aliases:
        add("alias", alias, summary)
    add("title", pattern.title, summary)
    return out


def _positive_of(pattern: Pattern, kind: str) -> str:
    """The text of `pattern` that plays the positive's part in a pair of `kind`."""
    if kind in ("problem", "context"):
        return remedy(pattern)
    if kind == "tension":
        return _text(pattern, "problem")
    return pattern.summary.strip()


def _names(pattern: Pattern) -> frozenset[str]:
    return _name_set(pattern.title, pattern.aliases)


@functools.lru_cache(maxsize=65536)
def _name_set(title: str, aliases: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name_key(n) for n in (title, *aliases) if name_key(n))


def related(a: Pattern, b: Pattern) -> bool:
    """Never a negative for each other: the same pattern or a near-duplicate (slug stem, shared name, title trigrams)."""
    return a.slug == b.slug or bool(_names(a) & _names(b)) or near_duplicates(a, b, NEAR_DUPLICATE_DICE)


def split(
    patterns: tuple[Pattern, ...] | list[Pattern], seed: int, share: float = HELD_OUT_SHARE, among_all: bool = False
) -> tuple[list[Pattern], list[Pattern]]:
    """(training, held-out). Held out: the `share` of the patterns with a summary and a Problem whose seeded hash
    sorts first (stable under library edits: adding a pattern moves no other pattern across the split).
    `among_all`: the share of every pattern instead (`rag adapt --split-all`, for cross-validating on judged
    queries: a half of the library never trained on; only its patterns with both texts give held-out queries)."""
    eligible = list(patterns) if among_all else [p for p in patterns if p.summary.strip() and _text(p, "problem")]
    wanted = max(MIN_HELD_OUT, round(share * len(eligible))) if len(eligible) >= 2 else 0
    rank = sorted(eligible, key=lambda p: hashlib.sha256(f"{seed}:{p.slug}".encode()).hexdigest())
    held = {p.slug for p in rank[:wanted]}
    # a held-out pattern's near-duplicates are held out too, so none of its text leaks into training
    held |= {p.slug for p in patterns for h in rank[:wanted] if related(p, h)}
    return [p for p in patterns if p.slug not in held], [p for p in patterns if p.slug in held]


def mine(training: list[Pattern]) -> list[Pair]:
    """Every training pair with its hard negative (BM25 over the other training patterns); a pair whose
    anchor has no lexical match outside its own near-duplicates keeps no negative (in-batch negatives only)."""
    if not training:
        return []
    documents = [analyze(" ".join((p.title, p.summary, _text(p, "problem"), remedy(p)))) for p in training]
    index = LexicalIndex.build(documents)
    out: list[Pair] = []
    for pattern in training:
        blocked = np.array([related(pattern, other) for other in training])
        for pair in pattern_pairs(pattern):
            scores = index.scores(analyze(pair.anchor))
            scores[blocked] = -1.0
            best = int(np.argmax(scores))
            candidate = training[best]
            text = _positive_of(candidate, pair.kind) if scores[best] > 0 else ""
            if text and text != pair.positive:
                pair = Pair(pair.kind, pair.slug, pair.anchor, pair.positive, text, candidate.slug)
            out.append(pair)
    return out


def counts(pairs: list[Pair]) -> dict[str, int]:
    found = Counter(p.kind for p in pairs)
    return {kind: found.get(kind, 0) for kind in KINDS}


def cap(pairs: list[Pair], max_pairs: int | None, seed: int) -> list[Pair]:
    """At most `max_pairs`: a seeded uniform sample, in mined order (each kind keeps its share on average)."""
    if not max_pairs or len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng(seed)
    keep = sorted(rng.choice(len(pairs), size=max_pairs, replace=False))
    return [pairs[i] for i in keep]
