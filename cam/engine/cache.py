"""A cache for a long-running shared server: bounded by the bytes it holds, not by entries, so
its memory stays within budget however large the images visitors send."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class BoundedCache:
    """A thread-safe least-recently-used mapping bounded by the bytes its values hold."""

    def __init__(self, max_bytes: int, size_of: Callable[[object], int]) -> None:
        """``size_of(value)`` is what a value costs; a value over ``max_bytes`` is not kept."""
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._data: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key][0]

    def put(self, key: Hashable, value: object) -> None:
        size = self._size_of(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._data:
                self._bytes -= self._data.pop(key)[1]
            self._data[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= self._data.popitem(last=False)[1][1]

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
