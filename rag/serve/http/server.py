"""How the API is served: uvicorn with timeouts for idle and slow connections (issue 26).

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a connection that never completes its
request headers (a slow or stalled client, one byte every few seconds) is never timed out, since any byte cancels that
timer. `TimedH11Protocol` gives every request HEADER_TIMEOUT_S to arrive whole, from the connection's start or the
end of the previous response; the body then has BODY_TIMEOUT_S between chunks (rag.serve.http.limits.BodyLimit).
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0  # a request's headers must arrive whole within this
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this (uvicorn's default, stated)


class TimedH11Protocol(H11Protocol):
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:  # a request's headers arrived whole
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # waiting for the next request's headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def config(app, host: str, port: int, **options) -> uvicorn.Config:
    """The uvicorn settings every server of this project runs with (the CLI, the benchmarks, the tests)."""
    return uvicorn.Config(app, host=host, port=port, http=TimedH11Protocol, timeout_keep_alive=KEEP_ALIVE_S, **options)
