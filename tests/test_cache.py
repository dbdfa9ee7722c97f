"""The byte-bounded cache a shared server keeps decoded images, inputs and maps in."""
from __future__ import annotations

from cam.engine.cache import BoundedCache


def test_cache_holds_at_most_its_budget_and_evicts_the_least_recently_used():
    cache = BoundedCache(100, size_of=len)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", b"x" * 40)  # 120 bytes > 100: b, the least recently used, goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    assert cache.bytes == 80 and len(cache) == 2


def test_a_value_larger_than_the_budget_is_not_kept_and_evicts_nothing():
    cache = BoundedCache(100, size_of=len)
    cache.put("a", b"x" * 60)
    cache.put("huge", b"x" * 101)
    assert cache.get("huge") is None and cache.get("a") is not None and cache.bytes == 60


def test_replacing_a_key_counts_its_new_size_only():
    cache = BoundedCache(100, size_of=len)
    cache.put("a", b"x" * 60)
    cache.put("a", b"x" * 30)
    assert cache.bytes == 30 and len(cache) == 1
