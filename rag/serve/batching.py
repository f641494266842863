"""Dynamic micro-batching: concurrent searches that arrive within a short window run as one batch.

Each request thread calls `submit` and waits. The first request of an idle batcher starts a worker,
which waits up to `window_s` for more requests (or until `max_batch` are queued), then runs the whole
batch through one call (`Retriever.run_many`: one forward pass of the encoder, one vector search per
distinct filter) and hands every request its own result or error. The worker stays for the next batch
and exits after IDLE_EXIT_S without requests, so an idle or replaced batcher holds no thread.

Why the worker is kept: torch runs its kernels on an OpenMP thread team that belongs to the calling
thread. A fresh worker thread per batch made a fresh team per batch, and the previous team's threads kept
spinning on the two cores: one client's requests took 131 ms at p50 through the batcher against 75 ms
without it (eval/bench/2026-12-02.md, first run).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from rag.errors import Overloaded
from rag.serve.metrics import BATCH_SIZE, QUEUE_DEPTH

IDLE_EXIT_S = 30.0  # a worker without requests for this long exits (a new one starts with the next request)

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
        window_s: float,
        max_batch: int,
        idle_exit_s: float = IDLE_EXIT_S,
    ):
        if max_batch < 1 or window_s < 0:
            raise ValueError("max_batch must be at least 1 and window_s at least 0")
        self.run_batch = run_batch
        self.window_s = window_s
        self.max_batch = max_batch
        self.idle_exit_s = idle_exit_s
        self._pending: list[tuple[Item, Future]] = []
        self._lock = threading.Condition()
        self._working = False
        self.batches = 0  # batches run, and the requests in them (for /stats and tests)
        self.requests = 0

    def submit(self, item: Item) -> Result:
        future: Future = Future()
        with self._lock:
            self._pending.append((item, future))
            QUEUE_DEPTH.inc()
            if not self._working:
                self._working = True
                threading.Thread(target=self._work, name="rag-batcher", daemon=True).start()
            elif len(self._pending) == 1 or len(self._pending) >= self.max_batch:
                self._lock.notify()  # wake an idle worker, or end a window early when the batch is full
        result = future.result()
        if isinstance(result, BaseException):
            raise result
        return result

    def _work(self) -> None:
        while True:
            with self._lock:
                idle_until = time.monotonic() + self.idle_exit_s
                while not self._pending and (left := idle_until - time.monotonic()) > 0:
                    self._lock.wait(left)  # submit wakes it
                if not self._pending:
                    self._working = False
                    return
                deadline = time.monotonic() + self.window_s  # the window opens with the batch's first request
                while len(self._pending) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._lock.wait(left)
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                QUEUE_DEPTH.dec(len(batch))
                BATCH_SIZE.observe(len(batch))
            try:
                results = self.run_batch([item for item, _ in batch])
            except BaseException as exc:  # a bug in the batch call fails its requests, not the worker
                results = [exc] * len(batch)
            self.batches += 1
            self.requests += len(batch)
            for (_, future), result in zip(batch, results):
                future.set_result(result)


class Admission:
    """A bound on the searches a server holds at once (running or waiting for the micro-batcher): past `limit`, a search
    is refused at once with `Overloaded` (503 with Retry-After) instead of queueing, so latency stays bounded under any
    load. One object per server, shared by every state it serves (a reload keeps the count)."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("the admission limit must be at least 1")
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()
        self.refused = 0

    @property
    def held(self) -> int:
        return self._held

    def __enter__(self) -> Admission:
        with self._lock:
            if self._held >= self.limit:
                self.refused += 1
                raise Overloaded(f"the server is answering {self.limit} searches already; retry in {Overloaded.retry_after_s} s")
            self._held += 1
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._held -= 1
