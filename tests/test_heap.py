"""The C heap kept while networks run (``cam.engine.heap``), observed from outside: the kernel's
count of a process's resident pages and of the page faults it took, in a fresh process so no
other test's memory is in the way."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from cam.engine.heap import available

pytestmark = pytest.mark.skipif(not available(), reason="the heap is tuned on glibc only")

MB = 2**20
BLOCK_MB = 256  # one block far above any threshold glibc has for its own mmap


def _run(body: str) -> dict:
    script = textwrap.dedent("""
        import json, resource, threading
        import torch
        from cam.engine.heap import give_back, retained_heap

        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        def faults():
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        def block():  # written through, as a layer's output is
            return torch.empty(%d * 2**20 // 4).fill_(1.0)
        out = {}
        """ % BLOCK_MB) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_inside_a_chain_of_layers_reuses_freed_pages_and_give_back_returns_them_after():
    """Ten elementwise "layers" on a 64 MB activation, each output a new tensor and the input
    freed, four times over: as glibc comes, every output is fresh pages the kernel faults in;
    inside, the first pass takes a few activations' pages, the later ones an activation's at most
    in all (where the free chunks of the first pass do not line up, glibc may grow the heap once
    more: seen once in CI, 16,384 pages in the second pass, none in the third), and none in a pass
    once the heap has them.
    The pages stay after leaving, for the next computation, until ``give_back``."""
    out = _run("""
        def chain():
            x = torch.ones(64 * 2**20 // 4)
            for _ in range(10):
                x = x * 1.5
        def passes():
            counts = []
            for _ in range(4):
                start = faults()
                chain()
                counts.append(faults() - start)
            return counts
        base = rss()
        out["outside"] = passes()
        with retained_heap():
            out["inside"] = passes()
            out["inside_rss"] = rss() - base
        out["after_exit_rss"] = rss() - base
        give_back()
        out["given_back_rss"] = rss() - base
    """)
    pages = 64 * MB // 4096  # one activation's pages
    assert min(out["outside"]) > 10 * pages  # eleven activations, each faulted in
    assert out["inside"][0] < 6 * pages  # a few activations, the first time through
    assert sum(out["inside"][1:]) < pages * 3 // 2  # at most one more activation in all
    assert min(out["inside"][1:]) < pages // 20  # and none in a pass once it has them
    assert out["inside_rss"] > 100 * MB  # kept between passes
    assert out["after_exit_rss"] > 100 * MB  # and after leaving
    assert out["given_back_rss"] < 32 * MB  # until given back


def test_the_heap_is_kept_until_the_last_thread_inside_leaves():
    out = _run("""
        base = rss()
        entered, release = threading.Event(), threading.Event()
        def other():
            with retained_heap():
                entered.set()
                release.wait()
        thread = threading.Thread(target=other)
        thread.start()
        entered.wait()
        with retained_heap():
            pass
        b = block(); del b  # the other thread is still inside
        give_back()  # does nothing while it is
        out["one_left_inside"] = rss() - base
        release.set()
        thread.join()
        give_back()
        out["none_inside"] = rss() - base
    """)
    assert out["one_left_inside"] > (BLOCK_MB - 32) * MB
    assert out["none_inside"] < 32 * MB


def test_a_server_keeps_no_heap_in_computations_and_gives_large_blocks_back_at_once():
    """A server asks for blocks from 1 MiB to be mmap'd and for computations not to keep the
    heap (``app.memory``; its sessions' computations overlap): a 16 MB block freed goes straight
    back, inside a computation as outside, where under glibc's sliding rule it stays (the
    heap's top is trimmed only past 64 MB)."""
    out = _run("""
        from cam.engine.heap import between_computations
        def freed_16mb():
            base = rss()
            b = torch.empty(16 * 2**20 // 4).fill_(1.0); del b
            return rss() - base
        out["sliding"] = [freed_16mb() for _ in range(3)]
        out["took"] = between_computations(2**20, 2**20, 2, keep_heap=False)
        out["server"] = freed_16mb()
        with retained_heap():
            out["server_inside"] = [freed_16mb() for _ in range(3)]
    """)
    assert out["took"]
    assert max(out["sliding"][1:]) > 12 * MB
    assert out["server"] < 2 * MB
    assert max(out["server_inside"]) < 2 * MB


def test_the_first_screens_maps_keep_the_heap_though_the_first_session_asks_meanwhile():
    """#36: a browser that connects at once runs the page, which asks for the server's settings
    (``app.memory.configure_allocator``) while the warm-up is still loading the first screen's
    models: the warm-up's maps must still keep the heap (a 16 MB block freed inside stays, as
    under the command line's settings), and only when the first screen is ready do the
    server's settings hold (a 16 MB block freed inside a computation goes straight back) and
    what the warm-up kept goes back."""
    out = _run("""
        from app.memory import configure_allocator, preparing_first_screen
        def freed_16mb():
            base = rss()
            b = torch.empty(16 * 2**20 // 4).fill_(1.0); del b
            return rss() - base
        base = rss()
        with preparing_first_screen():
            out["asked_meanwhile"] = configure_allocator()
            with retained_heap():
                out["warm_up_inside"] = [freed_16mb() for _ in range(2)]
        out["left_after"] = rss() - base
        out["asked_after"] = configure_allocator()
        with retained_heap():
            out["server_inside"] = [freed_16mb() for _ in range(2)]
    """)
    assert out["asked_meanwhile"] is False and out["asked_after"] is True
    assert out["warm_up_inside"][0] > 12 * MB  # kept for the next layer
    assert out["left_after"] < 4 * MB  # given back when the first screen was ready
    assert max(out["server_inside"]) < 2 * MB


@pytest.mark.parametrize("arguments", [
    {"mmap_threshold": -1}, {"mmap_threshold": 0}, {"trim_threshold": float("nan")},
    {"arenas": ""}, {"arenas": 2.5}, {"trim_threshold": 2**40}, {"keep_heap": "no"}])
def test_settings_that_are_not_counts_are_refused_by_name_before_any_is_set(arguments):
    from cam.engine import heap

    settings = {"mmap_threshold": 2**20, "trim_threshold": 2**20, "arenas": 2,
                "keep_heap": True, **arguments}
    before = (heap._between, heap._keep)
    with pytest.raises(ValueError, match=next(iter(arguments))):
        heap.between_computations(settings.pop("mmap_threshold"), settings.pop("trim_threshold"),
                                  settings.pop("arenas"), keep_heap=settings.pop("keep_heap"))
    assert (heap._between, heap._keep) == before


def test_a_computation_of_the_engine_leaves_the_process_giving_memory_back():
    """The engine enters the kept heap for its CPU computations and always leaves it: after a
    real Lite0's maps, a freed block larger than glibc's mmap threshold goes straight back to
    the system (inside, it would have stayed)."""
    out = _run("""
        from cam.engine.engine import CamEngine
        from cam.engine.inputs import collect_images
        from safe_io.paths import SAMPLE_IMAGES
        from scaled_models.zoo import load_requested, zoo_request
        zoo = load_requested(zoo_request("lite", "compound"))
        engine = CamEngine(zoo, batch_size=4)
        images = collect_images([SAMPLE_IMAGES]).images[:2]
        maps = engine.compute(images, model_keys=["lite0"])
        out["maps"] = len(maps)
        base = rss()
        b = block(); del b
        out["after_compute_free"] = rss() - base
    """)
    assert out["maps"] == 2
    assert out["after_compute_free"] < 32 * MB
