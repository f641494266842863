"""Ranking behaviours of issue 12 with the real model: pin order, calibrated relevance, no good match, typos."""

from __future__ import annotations

import numpy as np
import pytest

from rag.config import BuildSettings
from rag.index.build import build_index
from rag.index.search_index import SearchIndex
from rag.search.calibration import FEATURES, FREE, QUERY_FEATURES, Calibration
from rag.search.retriever import Retriever
from support import SHELVES, front_matter, topic_body, write_pattern

NONSENSE = [
    "xyzzy plugh",
    "the",
    "Der Hund schläft unter dem Küchentisch und träumt.",
    "preheat the oven and whisk three eggs with caster sugar for a sponge cake",
]


@pytest.mark.parametrize("query", NONSENSE)
def test_nonsense_stop_words_foreign_and_off_topic_say_no_good_match(retriever, query):
    results = retriever.search(query, k=5)
    assert results.no_good_match, [(h.slug, h.relevance) for h in results.hits]
    assert all(h.relevance < results.relevance_threshold for h in results.hits)


def test_a_situation_with_an_answer_is_a_good_match(retriever):
    results = retriever.search(SHELVES, k=5)
    assert not results.no_good_match
    assert results.hits[0].slug == "pull-based-replenishment" and results.hits[0].relevance >= results.relevance_threshold


def test_the_shipped_calibration_rises_with_the_score_and_with_every_kind_of_evidence():
    calibration = Calibration.load()
    assert set(calibration.weights) == set(FEATURES)
    assert all(calibration.weights[name] >= 0 for name in FEATURES if name not in FREE)
    query = np.array([0.5, 0.5, 0.0, 2.0, 1.0])
    low = float(calibration.relevance([1.0], [False], query)[0])
    assert 0.0 < low < 1.0
    assert calibration.relevance([1.5], [False], query)[0] > low  # a higher score, a higher relevance
    for i, name in enumerate(QUERY_FEATURES):
        if name in FREE:
            continue
        more = query.copy()
        more[i] += 0.3
        relevance = calibration.relevance([1.0], [False], more)[0]
        assert relevance > low if calibration.weights[name] > 0 else relevance == pytest.approx(low), name


@pytest.mark.parametrize("query", [SHELVES, "Pull-Based Replenishment", "meetings that decide nothing", "xyzzy plugh", "money"])
def test_relevance_never_rises_down_a_result_list(retriever, query):
    for group in (False, True):
        hits = retriever.search(query, k=25, group_duplicates=group).hits
        relevance = [h.relevance for h in hits]
        assert relevance == sorted(relevance, reverse=True), (query, relevance)


def test_relevance_is_comparable_across_queries(retriever):
    """The same pattern found by its name scores higher than when a vague query reaches it."""
    by_name = retriever.search("Pull-Based Replenishment", k=1).hits[0]
    vague = [h for h in retriever.search("things in general", k=25).hits if h.slug == by_name.slug]
    assert by_name.pinned and by_name.relevance > (vague[0].relevance if vague else 0.0)


def test_pinned_names_lead_by_similarity_then_evidence_and_say_so(tmp_path, embedder, embedding_cache_dir):
    """Two patterns share the alias "Shared Kitchen"; a third is titled "Shared Kitchen Rota" (fuzzy)."""
    lib = tmp_path / "lib"
    write_pattern(
        lib,
        "kitchen-a",
        front_matter("kitchen-a", "Community Cooking Space", aliases=["Shared Kitchen"], summary="A kitchen that neighbours share."),
        topic_body("sharing a kitchen between neighbours"),
    )
    write_pattern(
        lib,
        "kitchen-b",
        front_matter(
            "kitchen-b", "Commercial Kitchen Co-op", aliases=["Shared Kitchen"], summary="Food businesses co-own a commercial kitchen."
        ),
        topic_body("a shared kitchen for food businesses, a shared kitchen co-op"),
    )
    write_pattern(
        lib,
        "rota",
        front_matter("rota", "Shared Kitchen Rota", summary="Who cleans the shared kitchen when."),
        topic_body("cleaning rotas"),
    )
    write_pattern(lib, "bees", front_matter("bees", summary="Bees."), topic_body("keeping honey bees"))
    build_index(BuildSettings(lib, tmp_path / "ix", cache_dir=embedding_cache_dir), embedder)
    retriever = Retriever(SearchIndex.open(tmp_path / "ix"), embedder)
    hits = retriever.search("shared kitchen", k=4).hits
    pinned = [h for h in hits if h.pinned]
    assert [h.slug for h in pinned[:2]] != [] and {h.slug for h in pinned[:2]} == {"kitchen-a", "kitchen-b"}
    assert pinned[0].score >= pinned[1].score  # equal similarity: the better evidence first
    assert hits.index(pinned[-1]) == len(pinned) - 1  # pinned hits lead
    unpinned = [h for h in hits if not h.pinned]
    assert all(a.score >= b.score for a, b in zip(unpinned, unpinned[1:]))  # an unpinned hit never outranks a higher fused score


@pytest.mark.parametrize(
    ("query", "slug"), [("pull-based replenishmnet", "pull-based-replenishment"), ("open book managment", "open-book-management")]
)
def test_a_one_letter_slip_in_a_known_name_still_puts_it_first(retriever, query, slug):
    hit = retriever.search(query, k=3).hits[0]
    assert hit.slug == slug and hit.pinned


def test_a_slip_pins_nothing_unrelated(retriever):
    assert not any(h.pinned for h in retriever.search("replenishment of trust between members", k=5).hits)


@pytest.mark.corpora
def test_bmn_freemium_typo_and_subscription_pin_order(bmn_index_dir, embedder):
    retriever = Retriever(SearchIndex.open(bmn_index_dir), embedder)
    assert retriever.search("freemuim", k=3).hits[0].slug == "tiered-access-model"
    hits = retriever.search("subscription", k=5).hits
    pinned = [h for h in hits if h.pinned]
    assert pinned and pinned[0].name_match == "Subscription"
    rest = hits[len(pinned) :]
    assert all(a.score >= b.score for a, b in zip(rest, rest[1:]))


def test_a_reader_ranks_and_labels_without_filtering(retriever):
    plain = retriever.search("how do we share the numbers with everyone", k=10)
    as_activist = retriever.search("how do we share the numbers with everyone", k=10, reader="activist")
    assert {h.slug for h in as_activist.hits} and all(h.context == "activist" for h in as_activist.hits)
    assert any(h.context_label for h in as_activist.hits)
    assert len(as_activist.hits) == len(plain.hits)  # a reader filters nothing out


def test_reader_label_weights_change_a_ranking(retriever):
    """The mechanism: weighing the reader's own label chunk up (and others' down) reorders hits."""
    from rag.search.retriever import Retriever

    query = "a movement that keeps its money visible to members"
    boosted = Retriever(retriever.index, retriever.embedder, retriever.settings.with_(reader_label_weight=1.5, other_label_weight=0.0))
    orders = {
        reader: [h.slug for h in boosted.search(query, k=10, reader=reader).hits] for reader in ("activist", "corporate", "government")
    }
    assert len({tuple(v) for v in orders.values()}) > 1, orders


def test_an_unknown_reader_is_refused_with_the_valid_ones(retriever):
    from rag.errors import UnknownFilterValue

    with pytest.raises(UnknownFilterValue) as info:
        retriever.search("stock", reader="astronaut")
    assert info.value.field == "reader" and "activist" in info.value.valid
