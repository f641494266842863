"""`rag adapt` with the REAL model (marked `model`): one tiny training run (20 pairs, 1 epoch, batch 4; about
20-60 s on 2 cores), then the folder's manifest, the adapted encoder's name and vectors, the index refusal and
the worse-than-base guard. The guard tests replace training by a stub, so only the model load is real."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from rag.adapt import run as adapt_run
from rag.adapt.run import AdaptSettings, WorseThanBase, adapt
from rag.adapt.train import TrainResult, TrainSettings
from rag.embedding.adapted import ADAPT_MANIFEST, ModelStale, read_adapt_manifest, weights_hash
from rag.embedding.encoder import ModelInfo
from rag.embedding.fake import FakeEncoder
from rag.embedding.minilm import MODEL_NAME, MiniLMEncoder
from support.adapt_library import adapt_library

pytestmark = pytest.mark.model
TINY = TrainSettings(epochs=1, batch_size=4, seed=1)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return adapt_library(tmp_path_factory.mktemp("adapt-library"))


@pytest.fixture(scope="module")
def trained(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny"
    report = adapt(AdaptSettings(library, out, TINY, max_pairs=20, force=True))
    return out, report


def test_a_trained_model_is_written_with_its_manifest(trained, library):
    out, report = trained
    manifest = read_adapt_manifest(out)
    assert report.written and sum(report.pairs.values()) == 20 and manifest.pairs == report.pairs
    assert manifest.base_model == MODEL_NAME and manifest.base_hash == weights_hash(MiniLMEncoder().model_path)
    assert manifest.weights_hash == weights_hash(out) != manifest.base_hash
    assert (manifest.epochs, manifest.epochs_run, manifest.best_epoch, manifest.seed) == (1, 1, 1, 1)
    assert set(manifest.validation["base"]["held_out"]) == {"ndcg@10", "mrr@10", "queries"}
    assert manifest.held_out == tuple(report.held_out) and manifest.held_out
    assert not list(out.parent.glob(".tiny.*"))  # no temporary folder left behind


def test_the_adapted_model_loads_under_its_own_name_and_changes_vectors(trained):
    out, _ = trained
    adapted, base = MiniLMEncoder(model_path=out), MiniLMEncoder()
    assert adapted.info.name == f"{MODEL_NAME}+adapted@{weights_hash(out)[:16]}" != base.info.name
    assert adapted.info.key != base.info.key  # the embedding cache keeps their vectors apart
    texts = ["our bread goes stale before it sells", "bees swarm in spring"]
    a, b = adapted.encode(texts), base.encode(texts)
    assert a.shape == b.shape == (2, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(a, b, atol=1e-4)


def test_an_index_of_the_adapted_model_names_it_and_refuses_the_base(trained, library, tmp_path):
    from rag.config import BuildSettings
    from rag.errors import IndexIncompatible
    from rag.index.build import build_index
    from rag.index.search_index import SearchIndex
    from rag.index.store import current_build
    from rag.records.manifest import read_manifest

    out, _ = trained
    info = MiniLMEncoder(model_path=out).info

    class Named(FakeEncoder):  # fake vectors under the adapted model's identity: the test is about names
        @property
        def info(self) -> ModelInfo:
            return ModelInfo(info.name, info.path, 64, info.max_seq_length)

    build_index(BuildSettings(library, tmp_path / "index"), Named())
    manifest = read_manifest(current_build(tmp_path / "index"))
    assert manifest.model.name == info.name and manifest.extra["model_path"] == str(out)
    with pytest.raises(
        IndexIncompatible,
        match=r"model name='sentence-transformers/all-MiniLM-L6-v2\+adapted@[0-9a-f]{16}', the server uses "
        r"'sentence-transformers/all-MiniLM-L6-v2'",
    ):
        SearchIndex.open(tmp_path / "index", expected_model=ModelInfo(MODEL_NAME, "", 64, info.max_seq_length).record)
    with pytest.raises(IndexIncompatible, match=re.escape(f"--model {out} --rebuild")):  # the rebuild hint names the model folder again
        SearchIndex.open(tmp_path / "index", expected_model=ModelInfo(MODEL_NAME, "", 64, info.max_seq_length).record)
    assert SearchIndex.open(tmp_path / "index", expected_model=Named().info.record).manifest.model.name == info.name


def test_altered_weights_are_refused(trained, tmp_path):
    import shutil

    out, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = json.loads((copy / ADAPT_MANIFEST).read_text())
    data["weights_hash"] = "0" * 64
    (copy / ADAPT_MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ModelStale, match="not the ones its manifest records"):
        MiniLMEncoder(model_path=copy).encode(["x"])


def _stub_fit(figures):
    """Training replaced: the score function is called once (epoch 1), and the held-out figures come from `figures`."""

    def fit(model, pairs, settings, score, on_step=None):
        value = score(model)
        return TrainResult(epochs_run=1, best_epoch=1, best_score=value, scores=[value], pairs_seen=len(pairs), seconds=0.1)

    return fit


@pytest.fixture
def worse(monkeypatch):
    """The base scores 0.9 on the held-out patterns, the 'adapted' model 0.2."""
    values = iter([{"ndcg@10": 0.9, "mrr@10": 0.9, "queries": 3}, {"ndcg@10": 0.2, "mrr@10": 0.2, "queries": 3}])
    monkeypatch.setattr(adapt_run, "held_out_score", lambda encode, patterns, held: next(values))
    monkeypatch.setattr(adapt_run, "fit", _stub_fit(values))


def test_the_guard_refuses_a_model_worse_than_the_base(worse, library, tmp_path):
    out = tmp_path / "worse"
    with pytest.raises(WorseThanBase, match=r"nDCG@10 0\.2000 < 0\.9000\); nothing written") as caught:
        adapt(AdaptSettings(library, out, TINY, max_pairs=8))
    assert not out.exists() and not list(tmp_path.glob(".worse*"))
    assert caught.value.report.base["held_out"]["ndcg@10"] == 0.9 and caught.value.report.adapted["held_out"]["ndcg@10"] == 0.2


def test_force_writes_the_worse_model_and_says_so(worse, library, tmp_path):
    out = tmp_path / "worse"
    report = adapt(AdaptSettings(library, out, TINY, max_pairs=8, force=True))
    assert report.written and read_adapt_manifest(out).forced is True


def test_out_that_is_not_a_model_folder_is_refused(library, tmp_path):
    from rag.errors import InputError

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="is not a `rag adapt` model folder"):
        adapt(AdaptSettings(library, tmp_path / "notes", TINY))
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
