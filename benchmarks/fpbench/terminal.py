"""A pseudo-terminal a child draws on, drained all the time so it never blocks."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios
import threading


class Terminal:
    """A pseudo-terminal for a child's stdout and stderr; a thread drains what it draws.

    The child sees a real terminal (isatty, a window size from TIOCGWINSZ), so it draws
    its live view exactly as it would for a person. Our side keeps every byte (the whole
    typescript), so the final screen can be rendered afterwards. The master must be read
    all the time: a full pty buffer would block the child's writes and slow it down.
    """

    def __init__(self, columns: int = 120, rows: int = 40) -> None:
        self.columns, self.rows = columns, rows
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.data = bytearray()
        self._slave_open = True
        self._thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every descriptor of the slave side is closed
                return
            if not chunk:
                return
            self.data += chunk

    def close_slave(self) -> None:
        """Once the child has its copy, ours must go, or the drain never sees the end."""
        if self._slave_open:
            self._slave_open = False
            os.close(self.slave)

    def finish(self, timeout: float = 10.0) -> bytes:
        self.close_slave()
        self._thread.join(timeout)  # a straggler still holding the slave: give up after `timeout`
        os.close(self.master)
        self._thread.join(1)
        return bytes(self.data)
