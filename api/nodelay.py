"""uvicorn's HTTP protocol with Nagle's algorithm off on every connection, whatever socket it was accepted on.

With ``--workers`` above 1, uvicorn's supervisor binds the listening socket itself with ``proto`` 0 and asyncio
turns ``TCP_NODELAY`` on only for accepted sockets whose ``proto`` is TCP, so Nagle stays on there: on Linux a
response written in two parts waits for the client's delayed ACK, about 40 ms on each request of a kept-alive
connection after the first (uvicorn issue #3149; measured in docs/serve.md: 2 workers answered one caller in
70 ms against 25 ms for one worker, with the same CPU per query). One worker is not affected; setting the option
again there changes nothing.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's own HTTP protocol (httptools or h11), with ``TCP_NODELAY`` set on its connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        connection = transport.get_extra_info("socket")
        if connection is not None and connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
