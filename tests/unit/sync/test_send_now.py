"""A finished response is handed to the socket at once (woken long-polls don't wait for the reactor's write pass)."""

from __future__ import annotations

import socket

from twisted.internet import tcp
from twisted.internet.protocol import Protocol

from homeserver.http.site import _send_now


class _Reactor:
    def __init__(self) -> None:
        self.writers: set[object] = set()

    def addWriter(self, w: object) -> None:
        self.writers.add(w)

    def removeWriter(self, w: object) -> None:
        self.writers.discard(w)


def _connection() -> tuple[tcp.Connection, socket.socket, _Reactor]:
    a, b = socket.socketpair()
    a.setblocking(False)
    reactor = _Reactor()
    conn = tcp.Connection(a, Protocol(), reactor)  # type: ignore[arg-type]
    conn.connected = 1
    return conn, b, reactor


def test_buffered_bytes_reach_the_socket_and_the_writer_is_released() -> None:
    conn, peer, reactor = _connection()
    conn.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert reactor.writers == {conn}  # twisted alone would wait for the reactor's write pass
    _send_now(conn)
    assert peer.recv(100) == b"HTTP/1.1 200 OK\r\n\r\n"
    assert reactor.writers == set()


def test_closing_connections_and_other_transports_are_left_to_the_reactor() -> None:
    conn, peer, reactor = _connection()
    conn.write(b"bye")
    conn.disconnecting = True  # loseConnection: the reactor's write pass must do the close
    _send_now(conn)
    assert reactor.writers == {conn}
    peer.setblocking(False)
    try:
        assert peer.recv(10) == b""
    except BlockingIOError:
        pass
    _send_now(None)
    _send_now(object())
