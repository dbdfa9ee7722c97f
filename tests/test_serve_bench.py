"""The serve benchmark's pure helpers: /proc parsing and option matching (no server, no browser;
the benchmark itself is a script, `python -m benchmarks.serve`, and asserts nothing)."""
from __future__ import annotations

import pytest

from benchmarks.serve import parent_pid, pick_option, process_tree, tree_rss_bytes, vmrss_kb

STATUS = "Name:\tpython\nVmPeak:\t 9000000 kB\nVmRSS:\t 2322648 kB\nRssAnon:\t 2200000 kB\n"


def test_vmrss_is_read_in_kb_and_a_zombie_has_none():
    assert vmrss_kb(STATUS) == 2322648
    assert vmrss_kb("Name:\tpython\nState:\tZ (zombie)\n") == 0


def test_parent_pid_survives_spaces_and_parentheses_in_the_command_name():
    assert parent_pid("4242 (python) S 17 4242 4242 0 -1") == 17
    assert parent_pid("4243 (a b) (c)) R 4242 4243 17 0 -1") == 4242


def test_process_tree_is_the_root_and_all_its_descendants_only():
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 21: 20}
    assert sorted(process_tree(10, parents)) == [10, 11, 12, 13]
    assert process_tree(99, parents) == [99]


def test_tree_rss_sums_the_tree_from_a_proc_folder(tmp_path):
    for pid, ppid, rss in ((10, 1, 1000), (11, 10, 24), (20, 1, 5000)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (python) S {ppid} 0 0")
        (tmp_path / str(pid) / "status").write_text(f"VmRSS:\t {rss} kB\n")
    (tmp_path / "self").mkdir()  # not a process number: ignored
    assert tree_rss_bytes(10, tmp_path) == 1024 * 1024


def test_pick_option_prefers_the_exact_text_then_a_unique_match():
    options = ["Grad-CAM", "Grad-CAM++", "XGrad-CAM"]
    assert pick_option(options, "Grad-CAM") == 0
    assert pick_option(options, "++") == 1
    assert pick_option(options, "CAM") is None  # several contain it: never guess
    assert pick_option(["646 · maze, labyrinth (n03733281)"], "n03733281") == 0


def test_the_near_limit_upload_is_just_under_the_decoders_pixel_limit_and_decodes(tmp_path):
    """The large-png workload measures the decoder at its limit: 99.99 MP, with alpha (so it is
    composited), small on disk (the upload cap is not what stops it), and accepted."""
    from PIL import Image

    from benchmarks.serve import write_large_png
    from safe_io.images import DEFAULT_MAX_PIXELS, MAX_SIDE, load_image

    path = write_large_png(tmp_path / "large.png")
    with Image.open(path) as image:
        width, height = image.size
        assert image.mode == "RGBA"
    assert width * height == DEFAULT_MAX_PIXELS - width  # one row short of the limit
    assert path.stat().st_size < 2**20
    decoded = load_image(path)
    assert max(decoded.size) <= MAX_SIDE and decoded.mode == "RGB"
    # the half-transparent band over blue, composited on white: (230,180,60)·½ + 255·½
    assert decoded.getpixel((decoded.width - 1, 0)) == pytest.approx((242, 218, 158), abs=2)
