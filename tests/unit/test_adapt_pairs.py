"""`rag adapt` pair mining: exact counts per kind, hard negatives that are never near-duplicates, the split."""

from __future__ import annotations

from rag.adapt import pairs as mining
from rag.adapt.validate import ndcg_mrr
from rag.load.library import load_library
from support.adapt_library import ADAPT_PATTERNS, adapt_library


def _patterns(tmp_path):
    return load_library(adapt_library(tmp_path), 2 << 20).patterns


def test_one_pattern_yields_each_kind_from_the_right_fields(tmp_path):
    bread = next(p for p in _patterns(tmp_path) if p.slug == "bread")
    pairs = mining.pattern_pairs(bread)
    assert [p.kind for p in pairs] == ["problem", "context", "label", "label", "tension", "alias", "alias", "title"]
    problem, context, label, _, tension, alias, _, title = pairs
    assert problem.anchor == "Problem of baking sourdough bread: a paragraph about baking sourdough bread and nothing else."
    assert (
        problem.positive
        == "A pattern about baking sourdough bread.\n\nSolution of baking sourdough bread: a paragraph about baking sourdough bread and "
        "nothing else."
    )
    assert context.positive == problem.positive
    assert (label.anchor, label.positive) == ("a company cafeteria doing baking sourdough bread", "A pattern about baking sourdough bread.")
    assert (tension.anchor, tension.positive) == ("quality of baking sourdough bread vs. time spent", bread.section("problem").text.strip())
    assert (alias.anchor, title.anchor, title.positive) == ("Bakery Loaf", "Sourdough Bread", "A pattern about baking sourdough bread.")


def test_exact_counts_per_kind_on_the_tiny_library(tmp_path):
    pairs = mining.mine(list(_patterns(tmp_path)))
    aliases = sum(len(a) for *_, a in ADAPT_PATTERNS)  # 2 + 1 + 1 + 2 + 0 + 1 + 1 = 8
    assert mining.counts(pairs) == {"problem": 7, "context": 7, "label": 14, "tension": 7, "alias": aliases, "title": 7}
    assert len(pairs) == 7 * 6 + 8


def test_hard_negatives_are_never_near_duplicates(tmp_path):
    patterns = _patterns(tmp_path)
    by_slug = {p.slug: p for p in patterns}
    pairs = mining.mine(list(patterns))
    twins = {
        "bread": "bread-baking",
        "bread-baking": "bread",
        "bees": "hive-keeping",
        "hive-keeping": "bees",
        "repair-cafe": "bike-repair-cafes",
        "bike-repair-cafes": "repair-cafe",
    }
    assert all(mining.related(by_slug[a], by_slug[b]) for a, b in twins.items())  # slug stem, shared alias, title Dice
    with_negative = [p for p in pairs if p.negative]
    assert {(p.slug, p.kind) for p in with_negative} >= {(p.slug, k) for p in patterns for k in ("problem", "context")}
    for pair in with_negative:
        assert pair.negative_slug != pair.slug and pair.negative_slug != twins.get(pair.slug)
        assert not mining.related(by_slug[pair.slug], by_slug[pair.negative_slug])
    # without the block, BM25 would have picked the twin: the rule is what keeps it out
    bread_problem = next(p for p in pairs if p.slug == "bread" and p.kind == "problem")
    from rag.index.lexical import LexicalIndex, analyze

    others = [p for p in patterns if p.slug != "bread"]
    scores = LexicalIndex.build([analyze(p.summary + " " + mining.remedy(p)) for p in others]).scores(analyze(bread_problem.anchor))
    assert others[int(scores.argmax())].slug == "bread-baking"
    assert bread_problem.negative_slug not in ("bread", "bread-baking")


def test_split_holds_out_near_duplicates_together_and_is_seeded(tmp_path):
    patterns = _patterns(tmp_path)
    training, held = mining.split(patterns, seed=0, share=0.2)
    held_slugs = {p.slug for p in held}
    assert held and len(training) + len(held) == len(patterns)
    for twins in (("bread", "bread-baking"), ("bees", "hive-keeping"), ("repair-cafe", "bike-repair-cafes")):
        assert (twins[0] in held_slugs) == (twins[1] in held_slugs)
    assert {p.slug for p in mining.split(patterns, seed=0, share=0.2)[1]} == held_slugs
    assert not {p.slug for p in mining.mine(training)} & held_slugs


def test_cap_keeps_a_seeded_sample_in_order(tmp_path):
    pairs = mining.mine(list(_patterns(tmp_path)))
    capped = mining.cap(pairs, 10, seed=3)
    assert len(capped) == 10 and capped == mining.cap(pairs, 10, seed=3)
    assert [pairs.index(p) for p in capped] == sorted(pairs.index(p) for p in capped)
    assert mining.cap(pairs, None, seed=3) == pairs


def test_ndcg_and_mrr_by_hand():
    got = ndcg_mrr([["a", "b", "c"], ["x", "y"]], [{"b": 1}, {"q": 2}])
    assert got == {"ndcg@10": round((1 / 1.5849625007211563) / 2, 4), "mrr@10": round((1 / 2) / 2, 4), "queries": 2}
