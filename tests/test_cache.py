"""The byte-bounded cache a shared server keeps decoded images, inputs and maps in, and the
store on disk that keeps computed maps between a server's starts."""
from __future__ import annotations

import numpy as np
import pytest

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


# The computed-map store on disk (safe_io.digest_store): a cache, so anything odd is a miss.

def _store(tmp_path, max_bytes=1 << 20):
    from safe_io.digest_store import DigestStore

    return DigestStore(tmp_path / "maps", max_bytes)


def test_the_store_gives_back_what_was_put_under_a_digest_and_nothing_else(tmp_path):
    from safe_io.digest_store import digest

    store = _store(tmp_path)
    key = digest({"weights": "abc", "image": "def", "class": 3})
    assert key == digest({"class": 3, "image": "def", "weights": "abc"})  # key order is not
    assert len(key) == 64 and key != digest({"weights": "abc", "image": "def", "class": 4})
    assert store.get(key) is None
    stored = np.arange(49, dtype=np.float32).reshape(7, 7)
    store.put(key, {"raw_map": stored}, {"top5": [[281, 0.5]], "notes": []})
    arrays, record = store.get(key)
    np.testing.assert_array_equal(arrays["raw_map"], stored)
    assert arrays["raw_map"].dtype == np.float32
    assert record == {"top5": [[281, 0.5]], "notes": []}
    with pytest.raises(ValueError, match="not a sha256"):
        store.get("../../etc/passwd")


def test_a_truncated_foreign_or_pickled_file_is_a_miss_never_an_error(tmp_path):
    store = _store(tmp_path)
    keys = [f"{n:064x}" for n in range(4)]
    for key in keys:
        store.put(key, {"raw_map": np.ones((7, 7), np.float32)}, {"n": 1})
    paths = sorted((tmp_path / "maps").glob("*/*.npz"))
    assert len(paths) == 4
    truncated, foreign, pickled, layout = (store._path(k) for k in keys)
    truncated.write_bytes(truncated.read_bytes()[:100])
    foreign.write_bytes(b"not an npz file at all")
    with open(pickled, "wb") as out:  # an object array: np.load refuses it without pickles
        np.savez(out, __record__=np.array('{"__layout__": "scalecam-digest-store-1"}'),
                 raw_map=np.array([{"x": 1}], dtype=object))
    with open(layout, "wb") as out:
        np.savez(out, __record__=np.array('{"__layout__": "another"}'), raw_map=np.ones(2))
    assert [store.get(k) for k in keys] == [None] * 4


def test_the_store_keeps_within_its_budget_and_drops_the_least_recently_read(tmp_path):
    import os
    import time

    keys = [f"{n:064x}" for n in range(6)]
    written = _store(tmp_path)  # a roomy budget: nothing pruned while writing
    for age, key in enumerate(keys):
        written.put(key, {"raw_map": np.zeros(500, np.float32)}, {})  # ~2.3 kB each
        os.utime(written._path(key), (time.time() - 100 + age,) * 2)
    assert all(written._path(k).exists() for k in keys)
    store = _store(tmp_path, max_bytes=10_000)  # the next start, with a smaller budget
    store.get(keys[0])  # read now: the newest
    stat = store._path(keys[0]).stat()
    size = max(stat.st_size, stat.st_blocks * 512)  # the space it takes: whole blocks
    removed = store.prune()
    kept = [k for k in keys if store._path(k).exists()]
    assert removed == 6 - int(0.9 * 10_000) // size
    assert keys[0] in kept and kept == [keys[0], *keys[len(keys) - len(kept) + 1:]]


def test_a_store_that_cannot_be_written_is_silently_a_cache_that_misses(tmp_path):
    blocker = tmp_path / "maps"
    blocker.write_text("a file where the folder should be")
    store = _store(tmp_path)
    store.put("0" * 64, {"raw_map": np.ones(3)}, {})
    assert store.get("0" * 64) is None
