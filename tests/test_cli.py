"""The command line refuses bad arguments before any model is loaded, with a clear message, and
says so when there is nothing to evaluate."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cam.cli import build_parser, main

from .conftest import REPO, SAMPLE_IMAGES

FIGURE = ["figure", "--images", str(SAMPLE_IMAGES), "--out", "fig.png"]


@pytest.mark.parametrize("extra, message", [
    (["--alpha", "7"], "--alpha: must be a number from 0 to 1"),
    (["--alpha", "nan"], "--alpha: must be a number from 0 to 1"),
    (["--dpi", "-5"], "--dpi: must be 50..600"),
    (["--dpi", "5000"], "--dpi: must be 50..600"),
    (["--colormap", "bogus"], "--colormap: invalid choice: 'bogus'"),
    (["--batch-size", "0"], "--batch-size: must be a positive whole number"),
    (["--target", "unicorn"], "--target: target 'unicorn' is not"),
    (["--method", "gradcam3"], "--method: invalid choice"),
])
def test_bad_figure_arguments_stop_at_parse_time(extra, message, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(FIGURE + extra)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("out", ["x.txt", "x.jpg", "x"])
def test_figure_output_must_be_png_or_pdf(out, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["figure", "--images", str(SAMPLE_IMAGES), "--out", out])
    assert "the file name must end in .png or .pdf" in capsys.readouterr().err


def test_evaluate_and_report_check_their_arguments(capsys, tmp_path):
    for argv, message in (
            (["evaluate", "--val-dir", str(tmp_path / "nowhere"), "--out", "r.csv"],
             "no such folder"),
            (["evaluate", "--val-dir", str(tmp_path), "--out", "r.txt"], "must end in .csv"),
            (["evaluate", "--val-dir", str(tmp_path), "--out", "r.csv", "--method", "cam,bad"],
             "unknown method(s) bad"),
            (["evaluate", "--val-dir", str(tmp_path), "--out", "r.csv", "--limit", "0"],
             "must be a positive whole number"),
            (["report", "--val-dir", str(tmp_path), "--preset", "figure7", "--out", "r.png"],
             "must end in .pdf")):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert message in capsys.readouterr().err


def test_preset_needs_a_val_dir(capsys):
    with pytest.raises(SystemExit):
        main(["figure", "--preset", "figure7", "--out", "fig.png"])
    assert "--preset figure7 picks its images from --val-dir" in capsys.readouterr().err


def test_evaluate_with_no_usable_image_says_so(tmp_path):
    """A validation folder whose only image is corrupt: a message naming it, exit 1, no
    traceback, instead of a crash while plotting an empty summary."""
    folder = tmp_path / "val" / "n01440764"
    folder.mkdir(parents=True)
    (folder / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    env = dict(os.environ, SCALECAM_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "cam", "evaluate", "--val-dir", str(tmp_path / "val"),
         "--out", str(tmp_path / "r.csv"), "--family", "lite", "--models", "baseline",
         "--checkpoints", str(tmp_path / "none"), "--quiet"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert "ILSVRC2012_val_00000001" in proc.stderr and "could be evaluated" in proc.stderr
    assert "Traceback" not in proc.stderr
