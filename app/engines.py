"""Which engines the server keeps loaded, and when it lets one go.

An engine holds a ladder's networks (the ``resnet`` ladder: four ResNets, 0.76 GB of fp32
weights). Streamlit's ``cache_resource`` keeps whatever was loaded until the process ends, so one
visitor's look at a ladder left the server that much heavier for good. The pool keeps an engine
while a connected session has it picked (its latest page run asked for it), and for ``grace_s``
after a connected session switched away from it, so switching ladders back and forth does not
reload; once nobody connected has used it within the grace, or everyone who used it has left, it
is let go at the next sweep, and the caller returns the freed memory to the operating system.
The engines every first screen uses (``keep``) stay. Nothing here imports Streamlit: the app
passes in who is connected (``is_active``) and the clock, so the rules are tested as they run.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
E = TypeVar("E")


@dataclass
class _Held(Generic[E]):
    engine: E
    last_used: float
    users: set[str] = field(default_factory=set)  # sessions that have used it


@dataclass
class EnginePool(Generic[K, E]):
    """Engines by key, shared by every session; thread-safe. Past ``capacity`` engines, the
    least recently used one that no session has picked goes (a soft bound: the first screen's
    engines and the ones in use stay)."""

    keep: Callable[[K], bool]  # engines never let go (the first screen's)
    is_active: Callable[[str], bool]  # is this session still connected?
    capacity: int = 6
    grace_s: float = 120.0
    clock: Callable[[], float] = time.monotonic
    _held: dict[K, _Held[E]] = field(default_factory=dict)
    _picks: dict[str, K] = field(default_factory=dict)  # session → the engine it last asked for
    _state: threading.Lock = field(default_factory=threading.Lock)
    # one load at a time: two visitors opening two ladders at once would otherwise hold both
    # loads' transient copies together
    _loading: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: K, session: str, load: Callable[[], E]) -> E:
        """The engine for ``key``, loaded by ``load()`` if it is not held; ``session`` is
        recorded as using it."""
        engine = self._touch(key, session)
        if engine is not None:
            return engine
        with self._loading:
            engine = self._touch(key, session)
            if engine is not None:  # another session loaded it while this one waited
                return engine
            engine = load()
            with self._state:
                self._held[key] = _Held(engine, self.clock())
                self._pick(session, key)
                self._evict_over_capacity()
            return engine

    def _touch(self, key: K, session: str) -> E | None:
        with self._state:
            held = self._held.get(key)
            if held is None:
                return None
            self._pick(session, key)
            return held.engine

    def _pick(self, session: str, key: K) -> None:
        """``session`` uses ``key`` now, and the engine it used before until now."""
        now = self.clock()
        for used in (self._picks.get(session), key):
            if used in self._held:
                self._held[used].last_used = now
        self._held[key].users.add(session)
        self._picks[session] = key

    def _evict_over_capacity(self) -> None:
        picked = set(self._picks.values())
        releasable = sorted((k for k in self._held if not self.keep(k) and k not in picked),
                            key=lambda k: self._held[k].last_used)
        while len(self._held) > self.capacity and releasable:
            del self._held[releasable.pop(0)]

    def held(self) -> list[K]:
        with self._state:
            return list(self._held)

    def engines(self) -> list[tuple[K, E]]:
        """Every engine held now, with its key."""
        with self._state:
            return [(key, held.engine) for key, held in self._held.items()]

    def sweep(self) -> list[K]:
        """Let go of every engine that no connected session has picked, and that no connected
        session used within ``grace_s``; returns their keys (the caller then frees their
        memory)."""
        with self._state:
            self._picks = {s: k for s, k in self._picks.items() if self.is_active(s)}
            picked = set(self._picks.values())
            now = self.clock()
            for key, held in self._held.items():
                held.users &= self._picks.keys()  # the connected ones
                if key in picked:
                    held.last_used = now  # in use until now
            released = [k for k, held in self._held.items()
                        if not self.keep(k) and k not in picked
                        and (not held.users or now - held.last_used >= self.grace_s)]
            for key in released:
                del self._held[key]
            return released
