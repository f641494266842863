"""The encoder's device (issue 14, item 6): CUDA when torch sees a GPU, else the CPU, RAG_DEVICE to force one;
recorded in the build manifest, reported by /health and /stats.

There is no GPU here: the device choice is tested with a stand-in torch module, and the manifest and /health
with the fake encoder claiming a device. That CPU and GPU vectors agree (cosine within 1e-4) is checked by
`python tests/device/check_gpu.py` on a machine with a GPU; here it must say "no GPU" and exit 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.config import BuildSettings, Settings, device_from_env
from rag.embedding.fake import FakeEncoder
from rag.errors import ConfigError
from rag.index.build import build_index
from rag.index.store import current_build
from rag.records.manifest import MANIFEST, read_manifest
from rag.serve.http import create_app
from rag.serve.state import State
from support import REPO, SHELVES, small_library


@pytest.fixture(scope="module")
def cuda_index(tmp_path_factory):
    """A small library built by an encoder that says it ran on CUDA."""
    root = tmp_path_factory.mktemp("device")
    index_dir = root / "index"
    summary = build_index(BuildSettings(small_library(root / "lib"), index_dir), FakeEncoder(device="cuda"))
    return index_dir, summary


def test_the_build_records_its_device_in_the_manifest_and_summary(cuda_index):
    index_dir, summary = cuda_index
    assert summary.device == "cuda" and summary.chunks_encoded > 0
    build = current_build(index_dir)
    assert json.loads((build / MANIFEST).read_text())["device"] == "cuda"
    assert read_manifest(build).device == "cuda"
    unchanged = build_index(BuildSettings(index_dir.parent / "lib", index_dir), FakeEncoder(device="cpu"))
    assert unchanged.up_to_date and unchanged.device == "cuda"  # nothing encoded: the build it kept says where


def test_a_manifest_written_before_the_device_field_still_reads(cuda_index, tmp_path):
    import shutil

    index_dir, _ = cuda_index
    copy = tmp_path / "old"
    shutil.copytree(current_build(index_dir), copy)
    data = json.loads((copy / MANIFEST).read_text())
    del data["device"]
    (copy / MANIFEST).write_text(json.dumps(data))
    old = read_manifest(copy)
    assert old.device is None and "device" not in old.to_dict()
    assert read_manifest(current_build(index_dir)).with_(device=None).to_dict() == data


def test_health_and_stats_name_the_serving_and_the_build_device(cuda_index):
    index_dir, _ = cuda_index
    state = State.load(index_dir, FakeEncoder(device="cuda"), warm=False)
    with TestClient(create_app(Settings(index_dir=index_dir), state=state)) as client:
        health, stats = client.get("/health").json(), client.get("/stats").json()
    assert (health["status"], health["model_ready"], health["device"]) == ("ok", True, "cuda")
    assert stats["device"] == "cuda"


def test_health_names_no_device_before_the_model_loads(cuda_index):
    index_dir, _ = cuda_index

    class Cold(FakeEncoder):
        loaded = False

        @property
        def device(self):  # a real encoder would import torch to answer: /health must not ask
            raise AssertionError("asked for the device before the model loaded")

        @device.setter
        def device(self, value):
            pass

    with TestClient(create_app(Settings(index_dir=index_dir), state=State.load(index_dir, Cold(), warm=False))) as client:
        health = client.get("/health").json()
    assert health["model_ready"] is False and "device" not in health


def fake_torch(gpu: bool) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.__version__ = "0.0+stand-in"
    torch.version = types.SimpleNamespace(cuda="12.8" if gpu else None)
    torch.cuda = types.SimpleNamespace(is_available=lambda: gpu)
    torch.set_num_threads = lambda n: None
    return torch


@pytest.mark.parametrize(
    ("gpu", "requested", "expected"), [(True, "auto", "cuda"), (False, "auto", "cpu"), (True, "cpu", "cpu"), (True, "cuda", "cuda")]
)
def test_the_encoder_uses_cuda_when_torch_sees_a_gpu_unless_told(monkeypatch, gpu, requested, expected):
    from rag.embedding.minilm import MiniLMEncoder

    loaded_on = []
    transformers = types.ModuleType("sentence_transformers")
    transformers.SentenceTransformer = lambda path, device=None, **kw: loaded_on.append(device) or object()
    monkeypatch.setitem(sys.modules, "torch", fake_torch(gpu))
    monkeypatch.setitem(sys.modules, "sentence_transformers", transformers)
    encoder = MiniLMEncoder(device=requested)
    encoder._load()
    assert (encoder.device, loaded_on) == (expected, [expected])


def test_cuda_asked_for_without_a_gpu_is_a_config_error(monkeypatch):
    from rag.embedding.minilm import MiniLMEncoder

    monkeypatch.setitem(sys.modules, "torch", fake_torch(False))
    with pytest.raises(ConfigError, match=r"RAG_DEVICE=cuda, but torch 0\.0\+stand-in sees no GPU \(CUDA build: none\)"):
        _ = MiniLMEncoder(device="cuda").device
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        MiniLMEncoder(device="gpu")


def test_rag_device_is_read_at_the_cli_edge(fake_index_dir):
    from rag.cli import common
    from rag.cli.app import app

    assert (device_from_env({}), device_from_env({"RAG_DEVICE": " CPU "}), device_from_env({"RAG_DEVICE": "cuda"})) == (
        "auto",
        "cpu",
        "cuda",
    )
    with pytest.raises(ValueError, match="RAG_DEVICE must be one of auto, cpu, cuda, got 'gpu'"):
        device_from_env({"RAG_DEVICE": "gpu"})
    common.encoder.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["search", SHELVES, "--index-dir", str(fake_index_dir)], env={"RAG_DEVICE": "gpu", "RAG_SERVER": None}
        )
        assert result.exit_code == 2 and "error: RAG_DEVICE must be one of auto, cpu, cuda, got 'gpu'" in result.stderr
        default = common.encoder(None)  # RAG_DEVICE unset again: auto (the model is not loaded)
    finally:
        common.encoder.cache_clear()
    assert default.requested_device == "auto"


def test_the_gpu_check_script_says_no_gpu_and_exits_0_here():
    out = subprocess.run(
        [sys.executable, str(REPO / "tests" / "device" / "check_gpu.py")], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no GPU: torch ") or out.stdout.startswith("GPU: "), out.stdout


def test_query_encoder_from_env_and_the_cuda_build_check(tmp_path, monkeypatch):
    from rag.config import query_encoder_from_env
    from rag.embedding import choose

    assert (query_encoder_from_env({}), query_encoder_from_env({"RAG_QUERY_ENCODER": " Torch "})) == ("auto", "torch")
    with pytest.raises(ValueError, match="RAG_QUERY_ENCODER must be one of auto, numpy, torch, got 'onnx'"):
        query_encoder_from_env({"RAG_QUERY_ENCODER": "onnx"})
    for line, cuda in (("cuda: Optional[str] = None", False), ("cuda: Optional[str] = '12.4'", True), ("cuda = '11.8'", True)):
        package = (
            tmp_path / line.replace(" ", "").replace(":", "").replace("'", "").replace("[", "").replace("]", "").replace("=", "") / "torch"
        )
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "version.py").write_text(f"__version__ = 'x'\n{line}\n")
        spec = types.SimpleNamespace(submodule_search_locations=[str(package)])
        monkeypatch.setattr(choose.importlib.util, "find_spec", lambda name, spec=spec: spec)
        assert choose.torch_has_cuda() is cuda, line
