"""uvicorn's sans-I/O websocket protocol, closing in order when it refuses a frame.

uvicorn answers a frame it cannot take (over the size limit: 1009; text that is not
UTF-8: 1007) with a close frame, then closes the socket at once. The rest of the
refused frame is then still on its way in, and a socket closed with unread bytes
is reset, not closed: the kernel answers with RST. A client talking to the server
directly still reads the close frame first, but a proxy in between (nginx) may hit
the reset while it forwards the client's bytes, give up on the connection and never
pass the close frame on: the client sees the line drop (1006) instead of 1009.

This protocol does what the websockets library itself does when it fails a
connection (RFC 6455, 7.1.1): it sends the close frame, half-closes (FIN), and
reads and drops whatever the client still sends until the client closes its side,
or until uvicorn's close timeout (10 s) ends the wait.
"""

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class OrderlyCloseProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol, which half-closes and drains after refusing a frame."""

    refused = False

    def data_received(self, data: bytes) -> None:
        """Drops what arrives after a refused frame; hands anything else to uvicorn."""
        if self.refused:
            return
        super().data_received(data)

    def handle_parser_exception(self) -> None:
        """Sends the close frame, half-closes and waits for the client to close its side."""
        assert self.conn.close_sent is not None
        self.refused = True
        self.close_sent = True
        self.queue.put_nowait(
            {
                "type": "websocket.disconnect",
                "code": self.conn.close_sent.code,
                "reason": self.conn.close_sent.reason,
            }
        )
        # The websockets library queues its end-of-stream as an empty chunk: the
        # close frame is what there is to write.
        self.transport.write(b"".join(self.conn.data_to_send()))
        if not self.transport.can_write_eof():  # pragma: no cover - TLS is the proxy's
            self.transport.close()
            return
        self.transport.write_eof()
        # Reading may have been paused for a full queue; the rest must be drained.
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # uvicorn's protocol returns nothing from eof_received, so the transport closes
        # once the client has closed; if it never does, the timer closes it.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
