"""`python -m cam evaluate`: rows, summary, resume after a kill, corrupt files, distributed."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cam.engine.geometry import boxes_in_region
from cam.eval.layout import RunFiles
from cam.eval.map_export import ImageArrays, MapWriter
from cam.eval.rows import AgreementRow, MetricRow, hits_to_runs, read_rows, runs_to_hits, write_csv
from safe_io.imagenet_val import Box

from .conftest import REPO

FAST = ["--family", "lite", "--models", "baseline", "--faithfulness-steps", "2", "--quiet"]


def _evaluate(args, **kwargs):
    env = dict(os.environ, SCALECAM_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "cam", "evaluate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, **kwargs)


def test_boxes_map_into_the_region_inclusively():
    # region x,y in [100, 300) shown at 100 px: 2 photo px per display px
    boxes = boxes_in_region([Box(100, 100, 299, 299), Box(0, 0, 99, 99), Box(150, 50, 249, 149)],
                            (100.0, 100.0, 300.0, 300.0), 100)
    # photo x in [150, 250) → display [25, 75) → inclusive 25..74; y [50, 150) → clipped 0..24
    assert boxes == [(0.0, 0.0, 99.0, 99.0), (25.0, 0.0, 74.0, 24.0)]


# A row of a real run (ILSVRC2012_val_00000001 with the lite baseline, 16 faithfulness steps), as
# its CSV holds it: header, scalars, then where MaxBoxAccV2 counts it right: CAM thresholds
# 0.078–0.771 at δ = 30 %, 0.297–0.371 at δ = 50 %, none at δ = 70 %.
METRIC_CSV_HEADER = (
    "image_id,model,method,family,target_class,gt_class,pred_class,pred_prob,target_prob,"
    "low_confidence,top1_correct,top5_correct,gt_known_loc,top1_loc,loc_iou,pointing_hit,"
    "energy_in_box,deletion_auc,insertion_auc,deletion_auc_norm,insertion_auc_norm,box_hits")
REAL_METRIC_LINE = (
    "ILSVRC2012_val_00000001,baseline,cam,lite,65,65,65,0.160076,0.160076,0,1,1,0,0,0.405191,1,"
    "0.498149,0.012594,0.048601,0.078678,0.303616,78:772/297:372/-")


def test_row_schema_round_trips_a_real_row_through_csv_text():
    """CSV text → typed row → CSV text gives the same bytes, and row → text → row the same row:
    the writer, the --resume reader and the summary all see one schema."""
    text = METRIC_CSV_HEADER + "\n" + REAL_METRIC_LINE + "\n"
    # the same image without boxes and without a faithfulness pass: the empty cells stay empty
    unboxed = REAL_METRIC_LINE.split(",")[:12] + [""] * 10
    unboxed[0] = "ILSVRC2012_val_00000002"
    text += ",".join(unboxed) + "\n"
    rows = [MetricRow.from_csv_row(r) for r in csv.DictReader(io.StringIO(text))]
    real, bare = rows
    assert (real.image_id, real.target_class, real.pred_prob) == ("ILSVRC2012_val_00000001", 65,
                                                                  0.160076)
    assert (real.low_confidence, real.top1_correct, real.gt_known_loc) == (False, True, False)
    hits = real.box_hits.array  # in memory as computed: δ × τ, exactly the runs the CSV holds
    expected = np.zeros((3, 1000), dtype=bool)
    expected[0, 78:772] = expected[1, 297:372] = True
    assert hits.shape == (3, 1000) and np.array_equal(hits, expected)
    assert hits_to_runs(hits) == ((78, 772), (297, 372), ())
    assert np.array_equal(runs_to_hits(((78, 772), (297, 372), ()), 1000), expected)
    assert (bare.gt_known_loc, bare.loc_iou, bare.deletion_auc, bare.box_hits) == (
        None, None, None, None)
    written = io.StringIO()
    write_csv(written, rows, MetricRow)
    assert written.getvalue() == text
    assert [MetricRow.from_csv_row(r.to_csv_row()) for r in rows] == rows
    pair = AgreementRow.from_csv_row(dict(zip(
        AgreementRow.columns(), "ILSVRC2012_val_00000001,cam,baseline,resolution,65,65,0.677852,"
        "0.505663".split(","))))
    assert (pair.class_a, pair.spearman) == (65, 0.677852)
    assert ",".join(pair.to_csv_row().values()) == (
        "ILSVRC2012_val_00000001,cam,baseline,resolution,65,65,0.677852,0.505663")


def test_evaluate_cli_rows_agreement_summary_and_plots(val_sample, tmp_path):
    out = tmp_path / "r.csv"
    proc = _evaluate(["--val-dir", str(val_sample), "--limit", "4", "--out", str(out),
                      "--checkpoints", str(tmp_path / "none"), "--family", "lite",
                      "--models", "baseline,compound", "--faithfulness-steps", "2", "--quiet",
                      "--save-maps"])
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out, MetricRow)
    assert len(rows) == 8 and out.read_text().startswith(METRIC_CSV_HEADER + "\n")
    for row in rows:
        assert row.method == "cam" and row.target_class == row.gt_class
        assert isinstance(row.gt_known_loc, bool) and row.box_hits.array.shape == (3, 1000)
        # normalised faithfulness is the raw AUC over the unperturbed probability
        assert abs(row.deletion_auc_norm * row.target_prob - row.deletion_auc) < 1e-5
        assert row.low_confidence == (row.target_prob < 0.10)
    pairs = read_rows(RunFiles(out).agreement, AgreementRow)
    assert [(p.model_a, p.model_b) for p in pairs] == [("baseline", "compound")] * 4
    assert all(-1 <= p.spearman <= 1 and 0 <= p.top20_iou <= 1 for p in pairs)
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["n_images"] == 4 and summary["models"] == ["baseline", "compound"]
    top1 = summary["metrics"]["baseline"]["top1_correct"]
    by_hand = 100 * sum(r.top1_correct for r in rows if r.model == "baseline") / 4
    assert top1["mean"] == by_hand and top1["ci95"][0] <= by_hand <= top1["ci95"][1]
    difference = summary["differences"]["compound|baseline"]["gt_known_loc"]
    assert difference["p"] is not None and len(difference["ci95"]) == 2
    spearman = summary["agreement"]["baseline|compound"]["spearman"]["mean"]
    assert abs(spearman - sum(p.spearman for p in pairs) / 4) < 1e-6
    assert "compound − baseline, GT-known Loc:" in proc.stdout and "[95 % CI]" in proc.stdout
    for plot in (out.with_suffix(".png"), out.with_suffix(".agreement.png")):
        assert plot.read_bytes().startswith(b"\x89PNG")
    # --save-maps: one .npz per model, read back as Quantus takes its arguments; Arras et al.'s
    # relevance mass accuracy (Quantus' RelevanceMassAccuracy: relevance inside the mask over
    # all relevance), on the ReLU'd map, is the CSV's energy in box.
    assert sorted(p.name for p in tmp_path.glob("r.maps.*")) == [
        "r.maps.baseline.npz", "r.maps.compound.npz"]
    for model in ("baseline", "compound"):
        arrays = np.load(tmp_path / f"r.maps.{model}.npz")
        x, y, a, s = (arrays[k] for k in ("x_batch", "y_batch", "a_batch", "s_batch"))
        assert x.shape == (4, 3, 224, 224) and 0 <= x.min() and x.max() <= 1
        assert a.shape == s.shape == (4, 1, 224, 224) and s.dtype == bool
        model_rows = [r for r in rows if r.model == model]
        assert list(arrays["image_ids"]) == [r.image_id for r in model_rows]
        assert list(y) == [r.gt_class for r in model_rows]
        assert list(arrays["predictions"]) == [r.pred_class for r in model_rows]
        for row, amap, mask in zip(model_rows, a, s):
            relu = np.maximum(amap, 0)
            assert abs(relu[mask].sum() / relu.sum() - row.energy_in_box) < 1e-6


def test_killed_run_resumes_to_the_same_csv_and_maps(val_sample, tmp_path):
    args = ["--val-dir", str(val_sample), "--limit", "8", "--batch-size", "2",
            "--checkpoints", str(tmp_path / "none"), "--save-maps", *FAST]
    full = tmp_path / "full.csv"
    assert _evaluate([*args, "--out", str(full)]).returncode == 0

    killed = tmp_path / "killed.csv"
    env = dict(os.environ, SCALECAM_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "cam", "evaluate", *args, "--out",
                             str(killed)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if killed.is_file() and len(read_rows(killed, MetricRow)) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    interrupted_rows = len(read_rows(killed, MetricRow))
    assert 2 <= interrupted_rows < 8, "the run should have been killed midway"
    with killed.open("a") as fh:  # a torn line, as if killed mid-write
        fh.write("ILSVRC2012_val_0000")
    resumed = _evaluate([*args, "--out", str(killed), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert killed.read_text() == full.read_text()
    assert RunFiles(killed).agreement.read_text() == RunFiles(full).agreement.read_text()
    resumed_maps = np.load(tmp_path / "killed.maps.baseline.npz")
    full_maps = np.load(tmp_path / "full.maps.baseline.npz")
    assert sorted(resumed_maps.files) == sorted(full_maps.files)
    for key in full_maps.files:
        np.testing.assert_array_equal(resumed_maps[key], full_maps[key])
    assert not (tmp_path / "killed.maps.parts").exists()


def test_corrupt_file_in_val_dir_is_skipped_and_reported(val_sample, tmp_path):
    wnid_dir = tmp_path / "val" / "n01751748"
    wnid_dir.mkdir(parents=True)
    shutil.copy(val_sample / "ILSVRC2012_val_00000001.JPEG", wnid_dir)
    (wnid_dir / "ILSVRC2012_val_99999999.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "r.csv"
    proc = _evaluate(["--val-dir", str(tmp_path / "val"), "--out", str(out),
                      "--checkpoints", str(tmp_path / "none"), "--batch-size", "1",
                      "--save-maps", *FAST])
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "ILSVRC2012_val_99999999" in proc.stderr
    assert "Traceback" not in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["image_id"] for r in rows] == ["ILSVRC2012_val_00000001"]
    # the corrupt file's chunk holds no image: its maps are an empty shard, not a crash
    assert list(np.load(tmp_path / "r.maps.baseline.npz")["image_ids"]) == [
        "ILSVRC2012_val_00000001"]


@pytest.mark.slow
def test_two_process_gloo_run_merges_rows(val_sample, tmp_path):
    single = tmp_path / "single.csv"
    args = ["--val-dir", str(val_sample), "--limit", "5", "--batch-size", "2",
            "--checkpoints", str(tmp_path / "none"), *FAST]
    assert _evaluate([*args, "--out", str(single)]).returncode == 0
    double = tmp_path / "double.csv"
    env = dict(os.environ, SCALECAM_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", "-m", "cam", "evaluate", *args, "--out",
                           str(double)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single_rows, double_rows = read_rows(single, MetricRow), read_rows(double, MetricRow)
    assert [r.image_id for r in double_rows] == [r.image_id for r in single_rows]
    for a, b in zip(single_rows, double_rows):
        assert a.pred_class == b.pred_class and a.gt_known_loc == b.gt_known_loc
    assert not list(tmp_path.glob("double.csv.part*"))


def test_resume_with_other_options_does_not_mix_rows(val_sample, tmp_path):
    args = ["--val-dir", str(val_sample), "--limit", "2", "--batch-size", "2",
            "--checkpoints", str(tmp_path / "none"), "--out", str(tmp_path / "r.csv")]
    assert _evaluate([*args, *FAST]).returncode == 0
    before = (tmp_path / "r.csv").read_text()
    other = [a if a != "2" else "3" for a in FAST]  # --faithfulness-steps 3
    proc = _evaluate([*args, *other, "--resume"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "faithfulness_steps (2 then, 3 now)" in proc.stderr
    assert (tmp_path / "r.csv").read_text() == before


def test_images_with_the_same_file_name_each_get_their_rows(tmp_path):
    from .test_data import repeated_names_folder

    out = tmp_path / "r.csv"
    proc = _evaluate(["--val-dir", str(repeated_names_folder(tmp_path / "data")), "--out",
                      str(out), "--checkpoints", str(tmp_path / "none"), *FAST])
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["image_id"] for r in csv.DictReader(out.open())) == [
        "0007", "n01751748/0001.JPEG", "n01751748/0003.JPEG", "n01751748/0003.png",
        "n02105855/0001.JPEG"]


def test_a_results_csv_of_another_version_is_refused_by_name(tmp_path):
    """A CSV written before MaxBoxAccV2's hits replaced the per-threshold IoUs has no
    ``box_hits`` column: reading it says which file and what is missing, not a KeyError."""
    old = tmp_path / "old.csv"
    old.write_text(METRIC_CSV_HEADER.replace("box_hits", "best_iou_by_threshold") + "\n"
                   + REAL_METRIC_LINE.rsplit(",", 1)[0] + ",0.242 0.242\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"old\.csv: not a MetricRow CSV .*no column box_hits"):
        read_rows(old, MetricRow)


def _arrays(image_id: str, value: float, gt: int = 3) -> ImageArrays:
    photo = np.full((224, 224, 3), int(value * 10), dtype=np.uint8)
    mask = np.zeros((224, 224), dtype=bool)
    mask[:10, :10] = True
    return ImageArrays(image_id, photo, gt, mask, {"baseline": np.full((224, 224), value,
                                                                      np.float32)},
                       {"baseline": gt}, {"baseline": gt})


def test_map_shards_of_an_earlier_run_never_join_a_fresh_one(tmp_path):
    """A killed two-process run left shards of processes 0 and 1; a fresh one-process run
    clears both before writing, so its maps are its own; a chunk without a usable image is an
    empty shard; the merge follows the dataset's order and writes the photo in [0, 1]."""
    out = tmp_path / "r.csv"
    stale = MapWriter(out)
    stale.write(MapWriter.shard_name(1, 0), [_arrays("b", 7.0)], ["baseline"])
    stale.write(MapWriter.shard_name(0, 0), [_arrays("a", 7.0)], ["baseline"])
    fresh = MapWriter(out)
    fresh.clear(rank=0, world_size=1)
    assert not fresh.has(MapWriter.shard_name(0, 0)) and not fresh.has(MapWriter.shard_name(1, 0))
    fresh.write(MapWriter.shard_name(0, 0), [_arrays("b", 2.0), _arrays("a", 1.0)], ["baseline"])
    fresh.write(MapWriter.shard_name(0, 2), [], ["baseline"])  # every image unreadable
    (path,) = fresh.merge(["a", "b", "c"], ["baseline"])
    maps = np.load(path)
    assert list(maps["image_ids"]) == ["a", "b"]
    assert [float(a.max()) for a in maps["a_batch"]] == [1.0, 2.0]
    assert maps["x_batch"].dtype == np.float32 and maps["x_batch"][0].max() == np.float32(10 / 255)
    assert maps["s_batch"].shape == (2, 1, 224, 224) and maps["s_batch"][0].sum() == 100
    assert not (tmp_path / "r.maps.parts").exists()


@pytest.mark.parametrize("command", ["evaluate", "figure"])
def test_an_unwritable_out_is_refused_before_any_model_loads(command, val_sample, tmp_path):
    """#32 item 7: --out in a folder that cannot be made was a traceback after the models had
    loaded (and, for evaluate, after every map was computed)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / ("r.csv" if command == "evaluate" else "fig.png")
    source = (["--val-dir", str(val_sample), "--save-maps"] if command == "evaluate"
              else ["--images", str(val_sample)])
    env = dict(os.environ, SCALECAM_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "cam", command, *source, "--out", str(out),
                           *FAST[:4]], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"argument --out: {blocker}: cannot write there" in proc.stderr
    assert "Traceback" not in proc.stderr and "family lite" not in proc.stderr


def test_maps_onto_a_full_disk_keep_the_rows_and_leave_no_partial_shard(val_sample, tmp_path):
    """#32 item 7: the maps' shard of the first chunk cannot be written (past the file size
    this process may write, as on a full disk): a message naming the shard and the room left,
    the rows already written kept, no partial .tmp shard left behind; --resume then finishes
    the run without computing those rows again."""
    import resource

    def limit() -> None:  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (250_000, 250_000))

    out = tmp_path / "r.csv"
    args = ["--val-dir", str(val_sample), "--limit", "4", "--batch-size", "2", "--out",
            str(out), "--checkpoints", str(tmp_path / "none"), "--save-maps", *FAST]
    proc = _evaluate(args, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr[-2000:]
    shard = tmp_path / "r.maps.parts" / "000-00000000"
    assert f"error: {shard}: could not be written (File too large);" in proc.stderr
    assert f"The 2 rows written so far are kept in {out}" in proc.stderr
    assert "--resume" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "r.maps.parts").iterdir())  # no partial shard
    first_rows = out.read_text()
    resumed = _evaluate([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert out.read_text().startswith(first_rows) and len(read_rows(out, MetricRow)) == 4
    assert np.load(tmp_path / "r.maps.baseline.npz")["a_batch"].shape == (4, 1, 224, 224)


def test_save_maps_without_room_for_them_is_refused_before_any_model_loads(val_sample, tmp_path,
                                                                          monkeypatch, capsys):
    """#32 item 7: a folder with less room than the maps' shards need is said before work."""
    import cam.cli.evaluate as command
    from cam.cli.main import main

    monkeypatch.setattr(command, "free_bytes", lambda path: 1000)
    monkeypatch.setattr(command, "engine_of", lambda *a, **k: pytest.fail("models loaded"))
    code = main(["evaluate", "--val-dir", str(val_sample), "--out", str(tmp_path / "r.csv"),
                     "--save-maps", *FAST])
    error = capsys.readouterr().err
    assert code == 2 and "--save-maps: the maps of 32 images × 1 models need at least" in error
    assert "free some space, pass --limit, or leave out --save-maps" in error
