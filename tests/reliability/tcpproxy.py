"""A small TCP forwarder between the tool and MySQL that can cut a connection mid-statement.

    with MySQLProxy(server.port) as proxy:
        proxy.cut_on(rb"ALTER TABLE", nth=3)   # the 3rd ALTER reaches the server; its answer never returns
        ... run the tool against proxy.port ...
        proxy.cut_events  # what was cut

It reads the client's MySQL packets (plain TCP: the proxy hides the server's TLS offer): a command packet (sequence
id 0) whose first byte is COM_QUERY and whose text matches the rule is forwarded to the server,
and then both sides of that one connection are reset (SO_LINGER 0): the server runs the statement,
the client sees the connection die while it waits for the answer. Other connections stay up.
"""

from __future__ import annotations

import re
import socket
import struct
import threading

COM_QUERY = 0x03

#: The comment the tool starts each statement with (db.connect.statement_tag).
_TAG = re.compile(rb"^/\* ragflow-migrate \w+ \w+ \*/ ")


class MySQLProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self._rule: tuple[re.Pattern[bytes], int] | None = None
        self._matches = 0
        self._mutex = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self.cut_events: list[bytes] = []
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- rules ------------------------------------------------------------------------------------
    def cut_on(self, pattern: bytes, nth: int = 1) -> None:
        """Cut the connection that sends the ``nth`` statement matching ``pattern`` (once)."""
        with self._mutex:
            self._rule, self._matches = (re.compile(pattern), nth), 0

    def clear(self) -> None:
        with self._mutex:
            self._rule = None

    def _should_cut(self, statement: bytes) -> bool:
        statement = _TAG.sub(b"", statement, count=1)  # as the tool wrote it, without its session tag
        with self._mutex:
            if self._rule is None or not self._rule[0].search(statement):
                return False
            self._matches += 1
            if self._matches < self._rule[1]:
                return False
            self._rule = None
            self.cut_events.append(statement)
            return True

    # -- plumbing ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._mutex:
                self._links.append((client, upstream))
                self.connections += 1
            cut = threading.Event()
            threading.Thread(target=self._client_to_server, args=(client, upstream, cut), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(upstream, client, cut), daemon=True).start()

    def _server_to_client(self, src: socket.socket, dst: socket.socket, cut: threading.Event) -> None:
        """Forward the server's bytes; in its greeting, hide the SSL capability so that the client
        stays on plain TCP (MySQL 9 offers TLS and pymysql takes it; the proxy must read the
        statements). The test accounts have no password, so nothing secret crosses in clear."""
        try:
            greeting = b""
            while len(greeting) < 4 or len(greeting) < 4 + struct.unpack("<I", greeting[:3] + b"\0")[0]:
                data = src.recv(65536)
                if not data:
                    raise ConnectionAbortedError("server closed during the greeting")
                greeting += data
            dst.sendall(_without_ssl(greeting))
        except OSError:
            _reset(src)
            _reset(dst)
            return
        self._pump(src, dst, cut)

    def _pump(self, src: socket.socket, dst: socket.socket, cut: threading.Event) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or cut.is_set():
                    break  # a cut link never delivers the answer
                dst.sendall(data)
        except OSError:
            pass
        _reset(src)
        _reset(dst)

    def _client_to_server(self, client: socket.socket, upstream: socket.socket, cut: threading.Event) -> None:
        buffer = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buffer += data
                while len(buffer) >= 4:
                    length = struct.unpack("<I", buffer[:3] + b"\0")[0]
                    if len(buffer) < 4 + length:
                        break
                    packet, buffer = buffer[: 4 + length], buffer[4 + length:]
                    seq, payload = packet[3], packet[4:]
                    if seq == 0 and payload[:1] == bytes([COM_QUERY]) and self._should_cut(payload[1:]):
                        # the server gets the statement, the client never gets the answer
                        cut.set()
                        upstream.sendall(packet)
                        threading.Event().wait(0.05)
                        raise ConnectionAbortedError("cut by the test")
                    upstream.sendall(packet)
        except OSError:
            pass
        _reset(client)
        _reset(upstream)

    def sever_all(self) -> None:
        with self._mutex:
            links = list(self._links)
        for a, b in links:
            _reset(a)
            _reset(b)

    def close(self) -> None:
        self._closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        self.sever_all()

    def __enter__(self) -> MySQLProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


CLIENT_SSL = 0x0800


def _without_ssl(data: bytes) -> bytes:
    """The server's HandshakeV10 packet with the SSL bit of its capability flags cleared."""
    payload = data[4:]
    if not payload or payload[0] != 0x0A:  # an error packet, or another protocol: leave it
        return data
    at = 4 + payload.index(b"\0", 1) + 1 + 4 + 8 + 1  # version string, connection id, salt, filler
    flags = struct.unpack("<H", data[at:at + 2])[0] & ~CLIENT_SSL
    return data[:at] + struct.pack("<H", flags) + data[at + 2:]


def _reset(sock: socket.socket) -> None:
    """Close at once (shutdown wakes the pump blocked on the socket; linger 0 sends RST): the
    peer sees 'connection reset' or 'lost connection'."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
