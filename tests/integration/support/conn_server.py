"""A TCP server for the tests' hand-made peers: a listening socket on
127.0.0.1, an accept thread, a thread per connection running the subclass's
serve(conn, n) (n: the connection's number, from 1 in accept order), and a
stop that wakes every blocked accept and recv and joins the threads."""
from __future__ import annotations

import socket
import threading


class ConnServer:
    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def serve(self, conn: socket.socket, n: int) -> None:
        raise NotImplementedError

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
                t = threading.Thread(target=self.serve, args=(conn, self.accepted), daemon=True)
                self.threads.append(t)
            t.start()

    def stop(self):
        self.stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for conn in self.conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(5)
