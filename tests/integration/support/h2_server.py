"""A real HTTP/2 (h2c, prior knowledge) server built on the `h2` package, for
what grpcio will not do on demand: reset a stream, send GOAWAY, answer a big
body at the client's pace. Thread per connection; binds 127.0.0.1.

handler(headers: dict, body: bytes) -> one of
  ("reply", status, headers, body, trailers)  -- trailers may be None
  ("reset", error_code)                        -- RST_STREAM
  ("goaway",)                                  -- GOAWAY(last = the previous stream), then close
"""
from __future__ import annotations

import socket

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from .conn_server import ConnServer


class H2Server(ConnServer):
    def __init__(self, handler):
        self.handler = handler
        self.streams = 0
        self.sent = 0  # response body bytes handed to the socket
        self.closed = 0  # connections ended (the peer closed them, or they failed)
        super().__init__()

    def serve(self, conn: socket.socket, n: int):
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        c.initiate_connection()
        conn.sendall(c.data_to_send())
        reqs: dict[int, list] = {}
        last = 0
        pending_data: dict[int, bytes] = {}
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        reqs[ev.stream_id] = [dict(ev.headers), b""]
                    elif isinstance(ev, h2.events.DataReceived):
                        reqs[ev.stream_id][1] += ev.data
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.WindowUpdated):
                        for sid in list(pending_data):
                            self._send_body(c, sid, pending_data)
                    if isinstance(ev, h2.events.StreamEnded):
                        headers, body = reqs.pop(ev.stream_id)
                        with self.lock:
                            self.streams += 1
                        action = self.handler(headers, body)
                        if action[0] == "reset":
                            c.reset_stream(ev.stream_id, error_code=action[1])
                        elif action[0] == "goaway":
                            c.close_connection(last_stream_id=last)
                            conn.sendall(c.data_to_send())
                            conn.close()
                            return
                        else:
                            _, status, hdrs, rbody, trailers = action
                            c.send_headers(ev.stream_id, [(":status", str(status)), *hdrs],
                                           end_stream=not rbody and not trailers)
                            if rbody or trailers:
                                pending_data[ev.stream_id] = (rbody, trailers)
                                self._send_body(c, ev.stream_id, pending_data)
                            last = ev.stream_id
                conn.sendall(c.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            conn.close()
            with self.lock:
                self.closed += 1

    def _send_body(self, c, sid, pending):
        body, trailers = pending[sid]
        while body:
            n = min(len(body), c.local_flow_control_window(sid), c.max_outbound_frame_size)
            if n <= 0:
                pending[sid] = (body, trailers)
                return
            c.send_data(sid, body[:n])
            self.sent += n
            body = body[n:]
        del pending[sid]
        if trailers:
            c.send_headers(sid, list(trailers), end_stream=True)
        else:
            c.end_stream(sid)
