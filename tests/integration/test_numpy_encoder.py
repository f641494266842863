"""The numpy query encoder (rag.embedding.numpy_minilm): the real model's weights run without torch give the
vectors sentence-transformers gives, so an index built with torch is searched with the same rankings; `rag
search` on a real index never imports torch; RAG_QUERY_ENCODER and RAG_DEVICE choose between the two."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rag.embedding.choose import query_encoder
from rag.embedding.minilm import MiniLMEncoder, default_model_path
from rag.embedding.numpy_minilm import NumpyMiniLMEncoder, supported
from rag.errors import ConfigError
from support import REPO

TEXTS = [
    "our warehouse is full of stock nobody ordered",
    "circuit breaker",
    "",  # [CLS] [SEP] alone
    "Café naïve façade — résumé, 日本語, emoji 🙂 and TABS\tand\nnewlines",
    "def retry(fn, attempts=3): return fn() if attempts else None  # code-ish",
    "Andon Cord",
    " ".join(["a long section that runs past the model's window of two hundred fifty-six tokens"] * 40),  # truncated
]


@pytest.fixture(scope="module")
def numpy_encoder():
    return NumpyMiniLMEncoder()


def test_vectors_agree_with_sentence_transformers(numpy_encoder, embedder):
    ours, theirs = numpy_encoder.encode(TEXTS), embedder.encode(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() < 1e-5
    assert (ours * theirs).sum(axis=1).min() > 1 - 1e-6


def test_a_query_alone_equals_the_same_query_in_a_batch(numpy_encoder):
    batch = numpy_encoder.encode(TEXTS)
    for i, text in enumerate(TEXTS):
        assert np.abs(numpy_encoder.encode_query(text) - batch[i]).max() < 1e-6
    assert numpy_encoder.encode([]).shape == (0, 384)


def test_rankings_equal_those_of_torch_on_the_real_index(search_index, embedder, numpy_encoder):
    from rag.search.retriever import Retriever

    queries = [json.loads(line)["query"] for line in (REPO / "eval" / "dev" / "patterns.jsonl").read_text().splitlines() if line.strip()]
    torch_side, numpy_side = Retriever(search_index, embedder), Retriever(search_index, numpy_encoder)
    for query in queries:
        a, b = torch_side.search(query, 10), numpy_side.search(query, 10)
        assert [h.slug for h in a.hits] == [h.slug for h in b.hits], query
        assert np.allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-4), query


def test_rag_search_on_a_real_index_never_imports_torch(patterns_index_dir):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rag.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['search', 'stock nobody ordered', '--index-dir', {str(patterns_index_dir)!r}, '--json'])\n"
        "print(r.exit_code, 'torch' in sys.modules)\n"
        "print(r.output)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    first, *rest = out.stdout.splitlines()
    assert first == "0 False", out.stderr[-2000:]
    hits = json.loads("\n".join(rest))["hits"]
    assert hits and hits[0]["slug"] == "pull-based-replenishment"


def test_the_choice_of_query_encoder():
    assert isinstance(query_encoder(), NumpyMiniLMEncoder)  # a CPU build of torch: numpy
    assert isinstance(query_encoder(kind="torch"), MiniLMEncoder)
    assert isinstance(query_encoder(device="cuda"), MiniLMEncoder)  # a GPU asked for: torch (which then checks it)
    assert isinstance(query_encoder(device="cpu", kind="numpy"), NumpyMiniLMEncoder)
    assert supported(default_model_path()) is None


def test_a_model_it_cannot_compute_falls_back_to_torch_or_is_refused(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(default_model_path(), model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").symlink_to(default_model_path() / "model.safetensors")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    assert "GELU" in supported(model)
    assert isinstance(query_encoder(model), MiniLMEncoder)  # auto: torch computes what numpy cannot
    with pytest.raises(ConfigError, match="RAG_QUERY_ENCODER=torch"):
        query_encoder(model, kind="numpy").encode_query("x")
