"""CPU/GPU agreement of the encoder (issue 14, item 6), run by hand on a machine with a GPU:

    python tests/device/check_gpu.py [--texts 200] [--tolerance 1e-4]

Encodes about 200 chunk texts of patterns/ (every chunk in order, up to --texts) with all-MiniLM-L6-v2 on
the CPU and on CUDA and asserts that they agree: for every text, 1 - cosine(cpu vector, cuda vector) is at
most 1e-4, and so is every difference between a CPU and a CUDA cosine of two texts (what ranking compares).
Prints the load and encoding timings of each device. Exits 0 with a "no GPU" message when torch sees no
CUDA device (a CPU build of torch, or no driver), 1 when the vectors disagree.

Not part of the test suite: pytest collects only test_*.py files, and this machine has no GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's `rag`, whatever the script's folder


def chunk_texts(limit: int) -> list[str]:
    from rag.chunking import chunk_pattern, model_token_counter
    from rag.config import ChunkerSettings
    from rag.load.library import load_library

    count = model_token_counter()
    texts: list[str] = []
    for pattern in load_library(REPO / "patterns").patterns:
        texts.extend(c.text for c in chunk_pattern(pattern, count, ChunkerSettings()))
        if len(texts) >= limit:
            break
    return texts[:limit]


def timed_encode(device: str, texts: list[str]):
    from rag.embedding.minilm import MiniLMEncoder

    encoder = MiniLMEncoder(device=device)
    started = time.perf_counter()
    encoder.encode(["warm up"])  # loads the model (and, on CUDA, the kernels)
    loaded = time.perf_counter()
    vectors = encoder.encode(texts)
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    done = time.perf_counter()
    assert encoder.device == device, (encoder.device, device)
    print(
        f"{device:>4}: load {loaded - started:6.2f} s, {len(texts)} texts in {done - loaded:6.3f} s ({len(texts) / (done - loaded):8.1f} "
        f"texts/s)"
    )
    return vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=200, help="Chunk texts of patterns/ to encode (default 200).")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="Largest cosine difference allowed (default 1e-4).")
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print(
            f"no GPU: torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) sees no CUDA device; nothing to compare, "
            f"exiting 0"
        )
        return 0
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    texts = chunk_texts(args.texts)
    cpu = timed_encode("cpu", texts).astype(np.float64)
    gpu = timed_encode("cuda", texts).astype(np.float64)
    own = float(np.max(1.0 - np.sum(cpu * gpu, axis=1)))  # both sides are unit vectors
    pairwise = float(np.max(np.abs(cpu @ cpu.T - gpu @ gpu.T)))
    print(
        f"max 1 - cos(cpu, cuda) over {len(texts)} texts: {own:.2e}; max |cos_cpu - cos_cuda| over text pairs: {pairwise:.2e}; tolerance "
        f"{args.tolerance:.0e}"
    )
    if own > args.tolerance or pairwise > args.tolerance:
        print("FAIL: CPU and CUDA vectors disagree beyond the tolerance", file=sys.stderr)
        return 1
    print("ok: CPU and CUDA vectors agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
