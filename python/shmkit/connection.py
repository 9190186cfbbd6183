"""``Pipe`` and ``Connection``: multiprocessing's pipes in shared memory.

``Pipe(duplex=True)`` returns two :class:`Connection` objects on one shared duplex pipe (two
byte rings, :data:`DEFAULT_CAPACITY` bytes each way). An end belongs to the first process that
uses it (``send``/``recv``/``poll``), not to the one that made the pipe, so the usual pattern
works under every start method: make the pipe, pass one end to a child, use the other.

* Messages of any length: one longer than a record (:data:`DEFAULT_MAX_MSG` bytes) is sent in
  pieces and reassembled; a sender interrupted (Ctrl-C) mid-message cancels the pieces sent.
* ``close()`` by the process that uses an end closes the pipe for both (the other end's
  ``recv`` drains what was sent and then raises :class:`EOFError`; its ``send`` raises
  :class:`BrokenPipeError`), and so does garbage-collecting that end, as with multiprocessing's
  descriptors. ``close()`` of an end this process never used (the parent's copy of the child's
  end) only lets go of it.
* A peer that dies (even by SIGKILL) counts as closed: ``recv`` drains and raises
  ``EOFError``, ``poll`` returns ``True``.
* ``fileno()`` raises :class:`OSError`: there is no descriptor to ``select`` on (use ``poll``).
* One thread at a time per connection (as with multiprocessing): a second thread's call on the
  same end waits (GIL released, Ctrl-C checked) until the first one's call returns.
"""


from . import _native, _segment

__all__ = ["Pipe", "Connection", "DEFAULT_CAPACITY", "DEFAULT_MAX_MSG"]

#: Bytes per direction of a pipe.
DEFAULT_CAPACITY = 1 << 20
#: Bytes per record; longer messages go in pieces.
DEFAULT_MAX_MSG = 64 << 10


def Pipe(duplex=True, *, capacity=DEFAULT_CAPACITY, max_msg=DEFAULT_MAX_MSG, name=None, segment=None):
    """Returns ``(conn1, conn2)``: with ``duplex`` both send and receive; otherwise ``conn1``
    only receives and ``conn2`` only sends (as ``multiprocessing.Pipe``)."""
    a = Connection._make(0, capacity, max_msg, name, segment, readable=True, writable=duplex)
    b = Connection._make_other(a, readable=duplex, writable=True)
    return a, b


class Connection(_native.PipeEndpoint, _segment.SharedObject):
    """One end of a :func:`Pipe` (``multiprocessing.connection.Connection``'s methods)."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("make connections with shmkit.Pipe()")

    @classmethod
    def _make(cls, end, capacity, max_msg, name, segment, readable, writable):
        self = _segment.create(
            lambda s, n: _native.PipeEndpoint.__new__(cls, s, n, end, capacity, max_msg), name, segment
        )
        self._setup(readable, writable)
        return self

    @classmethod
    def _make_other(cls, a, readable, writable):
        cap, max_msg = a.dims
        self = _native.PipeEndpoint.__new__(cls, a._segment, a._name, 1 - a.end, cap, max_msg)
        self._setup(readable, writable)
        return self

    def _setup(self, readable, writable):
        self._readable = readable
        self._writable = writable
        self._closed = False
        self._set_mode(readable, writable)

    def _state(self):
        cap, max_msg = self.dims
        return (self.end, cap, max_msg, self._readable, self._writable)

    @classmethod
    def _attach(cls, segment, name, state):
        end, cap, max_msg, readable, writable = state
        self = _native.PipeEndpoint.__new__(cls, segment, name, end, cap, max_msg)
        self._setup(readable, writable)
        return self

    def __reduce__(self):
        if self._closed:
            raise OSError("handle is closed")
        return _segment.SharedObject.__reduce__(self)

    # -- checks -------------------------------------------------------------------------------

    def _check_closed(self):
        if self._closed:
            raise OSError("handle is closed")

    def _check_readable(self):
        if not self._readable:
            raise OSError("connection is write-only")

    def _check_writable(self):
        if not self._writable:
            raise OSError("connection is read-only")

    # -- multiprocessing's API ----------------------------------------------------------------

    @property
    def closed(self):
        """True if the connection is closed."""
        return self._closed

    @property
    def readable(self):
        """True if the connection is readable."""
        return self._readable

    @property
    def writable(self):
        """True if the connection is writable."""
        return self._writable

    def fileno(self):
        """Raises :class:`OSError`: a shared-memory pipe has no file descriptor."""
        self._check_closed()
        raise OSError("a shmkit Connection has no file descriptor (use poll())")

    def close(self):
        """Closes the connection (see the module's doc)."""
        if not self._closed:
            self._closed = True
            _native.PipeEndpoint.close(self)

    def send_bytes(self, buf, offset=0, size=None):
        """Sends ``buf[offset:offset+size]`` (any bytes-like object) as one message."""
        self._check_closed()
        self._check_writable()
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        n = m.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        _native.PipeEndpoint.send(self, bytes(m[offset : offset + size]))

    # send(obj) and recv() are the native class's, one call each (their checks of the mode
    # included): PipeEndpoint.send_obj and recv_obj, installed below under these names with
    # descriptors of Connection's own (_native._specialize), so that CPython specializes them.

    def _recv(self):
        self._check_closed()
        self._check_readable()
        return _native.PipeEndpoint.recv(self, None)

    def recv_bytes(self, maxlength=None):
        """Receives one message as bytes; ``EOFError`` when nothing is left and the other end
        closed or died; ``OSError`` (the connection is then closed) if it is longer than
        ``maxlength``."""
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        data = self._recv()
        if maxlength is not None and len(data) > maxlength:
            self.close()
            raise OSError("bad message length")
        return data

    def recv_bytes_into(self, buf, offset=0):
        """Receives one message into the writable buffer ``buf`` at ``offset``; returns its
        length. If it does not fit, raises ``multiprocessing.BufferTooShort`` holding the
        message as ``args[0]``."""
        data = self._recv()
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        if offset < 0 or offset > m.nbytes:
            raise ValueError("offset out of bounds")
        if len(data) > m.nbytes - offset:
            from multiprocessing import BufferTooShort

            raise BufferTooShort(data)
        m[offset : offset + len(data)] = data
        return len(data)

    def poll(self, timeout=0.0):
        """Whether there is data to read (or the other end closed or died), waiting at most
        ``timeout`` seconds (``None``: as long as needed)."""
        self._check_closed()
        self._check_readable()
        return _native.PipeEndpoint.poll(self, timeout)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        self.close()


_native._specialize(Connection)
