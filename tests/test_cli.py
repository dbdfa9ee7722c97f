"""The command line refuses bad arguments before any model is loaded, with a clear message, and
says so when there is nothing to evaluate."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cam.cli.main import build_parser, main

from .conftest import REPO, SAMPLE_IMAGES

FIGURE = ["figure", "--images", str(SAMPLE_IMAGES), "--out", "fig.png"]


@pytest.mark.parametrize("extra, message", [
    (["--alpha", "7"], "--alpha: must be a number from 0 to 1"),
    (["--alpha", "nan"], "--alpha: must be a number from 0 to 1"),
    (["--dpi", "-5"], "--dpi: must be a whole number from 50 to 600"),
    (["--dpi", "5000"], "--dpi: must be a whole number from 50 to 600"),
    (["--colormap", "bogus"], "--colormap: invalid choice: 'bogus'"),
    (["--batch-size", "0"], "--batch-size: must be a positive whole number"),
    (["--target", "unicorn"], "--target: target 'unicorn' is not"),
    (["--method", "gradcam3"], "--method: unknown CAM method 'gradcam3'"),
])
def test_bad_figure_arguments_stop_at_parse_time(extra, message, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(FIGURE + extra)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unknown_model_stops_before_any_model_loads_with_the_ladders_columns(capsys):
    """--models is read against the ladder (known only once every option is parsed): still a
    usage error (exit 2) that names the bad key and the columns one may choose."""
    with pytest.raises(SystemExit) as stop:
        main(FIGURE + ["--family", "lite", "--models", "baseline,foo"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--models: unknown model 'foo' in the table7 ladder" in err
    assert "baseline, depth, width, resolution, compound" in err


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


def _every_parser():
    """(name, parser) for every command of the three command lines, subcommands included."""
    import argparse

    from scaled_models.__main__ import main as table_main
    from scaled_models.train.cli import parse_args

    captured: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        captured.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        for run in (lambda: table_main([]), lambda: parse_args([])):
            with pytest.raises(SystemExit):
                run()
    finally:
        argparse.ArgumentParser.parse_args = original
    roots = [build_parser(), *captured]
    found = []
    while roots:
        parser = roots.pop()
        found.append((parser.prog, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                roots.extend(action.choices.values())
    return found


def test_every_option_of_every_command_says_what_it_does_and_its_default():
    """Issue 15: help text on every option, the default stated wherever there is one, and no
    reST markup or doubled percent signs leaking into what a terminal shows."""
    import argparse

    parsers = _every_parser()
    assert {prog for prog, _ in parsers} >= {
        "python -m cam", "python -m cam figure", "python -m cam evaluate", "python -m cam report",
        "python -m cam bench", "python -m cam table", "python -m scaled_models",
        "python -m scaled_models table", "python -m scaled_models.train"}
    for prog, parser in parsers:
        text = parser.format_help()
        assert "``" not in text and "%%" not in text, prog
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{prog} {action.option_strings or action.dest}: no help"
            takes_value = action.nargs != 0
            in_required_group = any(action in group._group_actions and group.required
                                    for group in parser._mutually_exclusive_groups)
            if (action.option_strings and takes_value and not action.required
                    and not in_required_group):
                assert "default" in action.help % vars(action), (
                    f"{prog} {action.option_strings[0]}: the default is not stated")


def test_cam_table_help_is_the_table_commands_help():
    """``python -m cam table --help`` used to stop with "unrecognized arguments"."""
    shown = subprocess.run([sys.executable, "-m", "cam", "table", "--help"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "--json" in shown.stdout and "JSON array" in shown.stdout


@pytest.mark.parametrize("extra, message", [
    (["--sessions", "0"], "--sessions: must be a positive whole number, got '0'"),
    (["--server-env", "FOO"], "--server-env: must be NAME=VALUE, got 'FOO'"),
    (["--workloads", "gradcam,bogus"], "--workloads: unknown workload(s) bogus"),
    (["--idle-seconds", "nan"], "--idle-seconds: must be a number of at least 0"),
])
def test_bad_serve_bench_arguments_stop_at_parse_time(extra, message, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser(serve_options=True).parse_args(["bench", "--serve", *extra])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


# --- #32: every option of every command, given a bad value --------------------------------------

_FIG = ["figure", "--images", str(SAMPLE_IMAGES), "--out", "fig.png"]
_EVAL = ["evaluate", "--val-dir", str(SAMPLE_IMAGES), "--out", "r.csv"]
_REPORT = ["report", "--val-dir", str(SAMPLE_IMAGES), "--images", str(SAMPLE_IMAGES), "--out",
           "r.pdf"]
_TRAIN = ["--model", "width", "--data", str(SAMPLE_IMAGES)]
_NO_CUDA = "cuda" if not __import__("torch").cuda.is_available() else "cuda:999"

# (command line, the option it gets wrong): a bad value of every option of every command
SWEEP = [
    *[(["figure", "--images", "", "--out", "fig.png"], "--images"),
      (["figure", "--preset", "figure8", "--out", "fig.png"], "--preset")],
    *[(_FIG + [option, value], option) for option, values in {
        "--method": ["gradcam3", ""], "--target": ["unicorn", "", "1000", "-1"],
        "--dpi": ["-5", "5000", "abc", "nan", "300.5"], "--colormap": ["bogus", ""],
        "--alpha": ["7", "nan", "-0.1", "abc", "inf"], "--normalisation": ["bogus"],
        "--batch-size": ["0", "-1", "1.5", ""], "--val-dir": ["", "/no/such/folder"],
        "--out": ["fig.jpg", "", "."], "--family": ["resnet", ""],
        "--checkpoints": ["", str(SAMPLE_IMAGES / "coffee.png")],
        "--models": ["", ",", "baseline,huge"], "--device": ["tpu", _NO_CUDA, ""],
    }.items() for value in values],
    *[(_EVAL + [option, value], option) for option, values in {
        "--val-dir": ["", "/no/such/folder"], "--method": ["cam,bad", "", ","],
        "--batch-size": ["0"], "--out": ["r.txt", ""], "--limit": ["0", "-3", "all"],
        "--faithfulness-steps": ["-1", "65", "nan"], "--models": [","], "--device": ["tpu"],
    }.items() for value in values],
    *[(_REPORT + [option, value], option) for option, values in {
        "--out": ["r.png"], "--faithfulness-steps": ["99"], "--limit": ["abc"],
        "--target": [""], "--alpha": ["2"],
    }.items() for value in values],
    *[(["bench", option, value], option) for option, values in {
        "--images": ["0", "1000", "many"], "--sessions": ["0"], "--idle-seconds": ["nan", "-1"],
        "--workloads": ["bogus", ""], "--export-images": ["0"], "--step-timeout": ["-1", "inf"],
        "--phase-timeout": ["nan"], "--server-env": ["FOO", "=1"], "--device": ["tpu"],
    }.items() for value in values],
    *[(["table", option, value], option) for option, values in {
        "--family": ["b7"], "--models": [","], "--device": ["tpu"], "--checkpoints": [""],
    }.items() for value in values],
    *[(["train", *_TRAIN, option, value], option) for option, values in {
        "--model": ["huge"], "--data": [""], "--eval-dir": [""], "--holdout": ["1", "-0.5", "x"],
        "--out": [""], "--recipe": ["fast"], "--family": ["b7"], "--teacher": [""],
        "--epochs": ["0", "nan"], "--batch-size": ["0"], "--image-size": ["8", "99999"],
        "--lr": ["nan", "-1", "inf", "100"], "--temperature": ["0", "nan", "1e9"],
        "--workers": ["-1", "two"], "--seed": ["-1", "1e3"], "--precision": ["fp16"],
        "--device": ["tpu", _NO_CUDA], "--limit-steps": ["0"], "--stop-after": ["-1"],
        "--eval-every": ["0"], "--log-dir": [""],
    }.items() for value in values],
]


def sweep_message(argv: list[str]) -> tuple[int | str | None, str]:
    """(exit code, what the command printed) for one command line, run in this process up to
    where it stops: the argument check."""
    import contextlib
    import io

    from scaled_models.train.cli import main as train_main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        if argv[0] == "train":
            train_main(argv[1:])
        else:
            main(argv)
    return stop.value.code, err.getvalue()


@pytest.mark.parametrize("argv, option", SWEEP, ids=[" ".join(a[-2:]) for a, _ in SWEEP])
def test_a_bad_value_of_any_option_is_a_message_naming_it(argv, option, tmp_path,
                                                         monkeypatch):
    """Out of range, not finite, the wrong type or empty: every option stops its command with
    argparse's exit status 2 and a line naming the option, before any model loads."""
    monkeypatch.chdir(tmp_path)
    code, printed = sweep_message(argv)
    assert code == 2, printed
    assert f"error: argument {option}" in printed or f"error: {option}" in printed, printed
    assert "Traceback" not in printed
