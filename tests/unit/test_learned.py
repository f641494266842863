"""The learned fusion's parts: the hub prior, exact per-role features, the linear ranker and its fit."""

from __future__ import annotations

import numpy as np
import pytest

from lab import learn
from rag.records.filters import Filters
from rag.records.request import SearchRequest
from rag.search.learned import FEATURES, ROLE_GROUPS, LinearRanker, hub_prior
from rag.search.retriever import Retriever


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_hub_prior_ranks_the_pattern_close_to_every_situation_highest():
    rng = np.random.default_rng(0)
    centre = rng.normal(size=8)
    # pattern 0: chunks at the centre of everything; patterns 1-3: each far out in its own direction
    chunks = [centre + 0.05 * rng.normal(size=8) for _ in range(3)]
    owners = [0, 0, 0]
    for p in (1, 2, 3):
        direction = rng.normal(size=8) * 3
        for _ in range(3):
            chunks.append(centre + direction + 0.3 * rng.normal(size=8))
            owners.append(p)
    vectors = _unit(np.array(chunks))
    roles = ["problem"] * len(chunks)
    hub = hub_prior(vectors, np.array(owners), roles, 4, queries=len(chunks))
    assert hub.shape == (4,)
    assert int(np.argmax(hub)) == 0
    assert abs(float(hub.mean())) < 1e-5  # z-scored


def test_hub_prior_never_scores_a_pattern_against_its_own_chunks():
    # two patterns, each with identical chunks: with self-matches the prior would be 1.0 for both
    vectors = _unit(np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32))
    hub = hub_prior(vectors, np.array([0, 0, 1, 1]), ["problem"] * 4, 2, queries=4)
    assert np.allclose(hub, 0.0)  # both see only the other (cosine 0): equal, so z-scores 0


def test_features_are_exact_for_every_candidate(fake_index, fake_encoder):
    retriever = Retriever(fake_index, fake_encoder)
    text = "pull based replenishment of stock"
    vector = fake_encoder.encode_query(text)
    query = retriever.prepare(SearchRequest(text)).with_vector(vector)
    runs = retriever.signal_runs(query)
    rows, X = retriever.candidate_features(query, runs, retriever.fuse(runs)[0])
    assert X.shape == (len(rows), len(FEATURES))
    col = {n: i for i, n in enumerate(FEATURES)}
    for i, row in enumerate(rows[:5]):
        chunk_rows = fake_index.chunk_rows(int(row))
        sims = fake_index.engine.chunk_vectors(chunk_rows) @ vector
        assert X[i, col["d_best"]] == pytest.approx(float(sims.max()), abs=1e-5)
        roles = [fake_index.chunks[c].role for c in chunk_rows]
        problem = [s for s, r in zip(sims, roles) if r in ROLE_GROUPS["d_problem"]]
        if problem:
            assert X[i, col["d_problem"]] == pytest.approx(max(problem), abs=1e-5)
    assert X[:, col["fulltext"]].max() == pytest.approx(1.0)  # scaled by the query's best candidate
    assert (X[:, col["d_reader"]] == 0).all()  # no reader asked for


def test_reader_feature_is_that_readers_label(fake_index, fake_encoder):
    retriever = Retriever(fake_index, fake_encoder)
    text = "a community group shares tools"
    vector = fake_encoder.encode_query(text)
    query = retriever.prepare(SearchRequest(text, filters=Filters(context="activist"))).with_vector(vector)
    runs = retriever.signal_runs(query)
    rows, X = retriever.candidate_features(query, runs, retriever.fuse(runs)[0])
    col = FEATURES.index("d_reader")
    row = int(rows[0])
    label_rows = [c for c in fake_index.chunk_rows(row) if fake_index.chunks[c].context == "activist"]
    assert label_rows, "patterns/ carries an activist label on every pattern"
    expected = float((fake_index.engine.chunk_vectors(np.array(label_rows)) @ vector).max())
    assert X[0, col] == pytest.approx(expected, abs=1e-5)


def test_linear_ranker_round_trips_and_rejects_unknown_features(tmp_path):
    ranker = LinearRanker({"d_support": 1.0, "fulltext": 0.3}, source="test")
    path = tmp_path / "ranker.json"
    ranker.save(path)
    again = LinearRanker.load(path)
    assert again.weights == ranker.weights
    X = np.zeros((2, len(FEATURES)), dtype=np.float32)
    X[0, FEATURES.index("fulltext")] = 1.0
    X[1, FEATURES.index("d_support")] = 0.2
    assert again.score(X).tolist() == pytest.approx([0.3, 0.2])
    path.write_text('{"weights": {"no_such_feature": 1}}')
    with pytest.raises(ValueError, match="no_such_feature"):
        LinearRanker.load(path)


def _query(set_name: str, qid: str, X: np.ndarray, grades: dict[int, int]) -> learn.QueryData:
    rows = np.arange(len(X))
    ideal = learn.dcg(sorted(grades.values(), reverse=True)[: learn.K])
    return learn.QueryData(set_name, qid, "situation", rows, X.astype(np.float32), [], list(rows), grades, ideal)


def test_fit_learns_a_feature_that_carries_the_relevance():
    rng = np.random.default_rng(3)
    fulltext = FEATURES.index("fulltext")
    queries = []
    for n in range(12):
        X = rng.normal(size=(30, len(FEATURES))) * 0.1
        relevant = int(rng.integers(30))
        X[relevant, fulltext] += 1.0  # only full text knows the answer; d_support is noise
        queries.append(_query("a" if n % 2 else "b", f"q{n}", X, {relevant: 2}))
    before = learn.objective(queries, np.eye(len(FEATURES))[FEATURES.index("d_support")])
    weights = learn.fit(queries)
    assert weights[fulltext] > 0
    assert learn.objective(queries, weights) > before + 0.3


def test_cross_validation_scores_each_query_with_a_model_that_never_saw_it(monkeypatch):
    rng = np.random.default_rng(4)
    queries = [_query("a", f"q{n}", rng.normal(size=(10, len(FEATURES))), {0: 1}) for n in range(10)]
    seen: list[set[str]] = []
    real_fit = learn.fit

    def spy(train, start=None):
        seen.append({q.qid for q in train})
        return real_fit(train, start)

    monkeypatch.setattr(learn, "fit", spy)
    held, models = learn.cross_validate(queries, 5)
    assert len(models) == 5 and len(held) == 10
    folds = learn.folds_of(queries, 5)
    for f, train in enumerate(seen):
        held_out = {q.qid for q, g in zip(queries, folds) if g == f}
        assert held_out and not (held_out & train)


def test_the_build_stores_the_hub_prior_and_the_index_checks_it(fake_index, tmp_path):
    import shutil

    from rag.errors import IndexCorrupt
    from rag.index.search_index import SearchIndex
    from rag.index.store import HUB as HUB_FILE

    assert fake_index.hub is not None and fake_index.hub.shape == (len(fake_index.patterns),)
    vectors = fake_index.engine.chunk_vectors(np.arange(len(fake_index.chunks)))
    again = hub_prior(vectors, np.asarray(fake_index.chunk_pattern), [c.role for c in fake_index.chunks], len(fake_index.patterns))
    assert np.allclose(fake_index.hub, again, atol=1e-5)
    assert HUB_FILE in fake_index.manifest.files  # checksummed like every build file
    copy = tmp_path / "index"
    shutil.copytree(fake_index.build_dir.parent.parent, copy, symlinks=True)
    build = copy / "current"
    np.save(build / HUB_FILE, np.zeros(3, dtype=np.float32))
    with pytest.raises(IndexCorrupt):
        SearchIndex.open(copy)


def test_feedback_terms_are_what_the_feedback_documents_share_rarest_first():
    from rag.index.postings import Postings

    docs = [
        ["garden", "compost", "worm", "soil"],
        ["garden", "compost", "worm", "rain"],
        ["garden", "fence"],
        ["garden", "compost", "soil"],
        ["market", "stall"],
    ]
    postings = Postings.build(docs)
    assert postings.document_frequencies(["garden", "compost", "nowhere"]).tolist() == [4, 3, 0]
    # held by both feedback documents: garden (df 4), compost (df 3), worm (df 2); rain is one document's own word
    assert postings.feedback_terms([0, 1], 5) == ["worm", "compost", "garden"]
    assert postings.feedback_terms([0, 1], 5, exclude={"worm"}) == ["compost", "garden"]
    assert postings.feedback_terms([0, 1], 1) == ["worm"]
    assert postings.feedback_terms([4], 5) == []  # one document is no topic


def test_lexical_features_are_exact(fake_index, fake_encoder):
    from rag.search import learned

    retriever = Retriever(fake_index, fake_encoder, features=frozenset(FEATURES))
    col = {n: i for i, n in enumerate(FEATURES)}
    engine = fake_index.engine
    text = "our shelves hold stock nobody ordered while the suppliers keep shipping more pallets every single week"
    query = retriever.prepare(SearchRequest(text, filters=Filters())).with_vector(fake_encoder.encode_query(text))
    runs = retriever.signal_runs(query)
    rows, X = retriever.candidate_features(query, runs, retriever.fuse(runs)[0])

    def scaled(values):
        return values / values.max() if values.max() > 0 else np.zeros_like(values)

    distinct = list(dict.fromkeys(query.tokens))
    assert len(distinct) > learned.KEY_TERMS
    df = engine.document_frequencies(distinct)
    rarest = [distinct[i] for i in np.argsort(np.where(df > 0, df, 10**9), kind="stable")[: learned.KEY_TERMS]]
    assert np.allclose(X[:, col["l_key"]], scaled(engine.lexical_scores("fulltext", rarest, query.selection)[rows]), atol=1e-6)
    terms = engine.feedback_terms(runs["fulltext"].rows[: learned.RM3_DOCS], learned.RM3_TERMS, set(query.tokens))
    assert terms and not set(terms) & set(query.tokens)
    feedback = scaled(engine.lexical_scores("fulltext", terms, query.selection)[rows])
    expected = (1 - learned.RM3_WEIGHT) * X[:, col["fulltext"]] + learned.RM3_WEIGHT * feedback
    assert np.allclose(X[:, col["l_rm3"]], expected, atol=1e-6)
    best = np.zeros(len(rows))
    for i, row in enumerate(rows):
        chunk_rows = fake_index.chunk_rows(int(row))
        problem = [c for c in chunk_rows if fake_index.chunks[c].role in ROLE_GROUPS["d_problem"]]
        if problem:
            best[i] = engine.passage_scores(query.tokens, np.array(problem)).max()
    assert best.max() > 0 and np.allclose(X[:, col["l_problem"]], scaled(best), atol=1e-6)
    short = retriever.prepare(SearchRequest("stock", filters=Filters())).with_vector(fake_encoder.encode_query("stock"))
    short_runs = retriever.signal_runs(short)
    _, Y = retriever.candidate_features(short, short_runs, retriever.fuse(short_runs)[0])
    assert np.array_equal(Y[:, col["l_key"]], Y[:, col["fulltext"]])  # a short query keeps every word
    # query-dependent fusion: each interaction is its signal times the query's length, 0 for a one-word query
    length = learned.query_length(len(query.tokens))
    assert 0 < length <= 1
    for name in learned.LENGTH_INTERACTIONS:
        assert np.allclose(X[:, col[f"x_{name}"]], length * X[:, col[name]], atol=1e-6), name
        assert not Y[:, col[f"x_{name}"]].any(), name


def test_query_length_ramps_from_short_to_narrative():
    from rag.search.learned import LONG_FROM, LONG_TO, query_length

    assert query_length(0) == query_length(LONG_FROM) == 0.0
    assert query_length(LONG_TO) == query_length(LONG_TO + 20) == 1.0
    assert query_length((LONG_FROM + LONG_TO) // 2) == pytest.approx(((LONG_FROM + LONG_TO) // 2 - LONG_FROM) / (LONG_TO - LONG_FROM))
