"""Table 7 as data, the architectures built from it, and the table CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from scaled_models import TABLE7, get_family, spec_for
from scaled_models.table7 import parse_model_keys
from scaled_models.zoo import measured_cost

from .conftest import REPO

# Measured with the reference rounding; the paper prints 0.4/1.8/1.8/1.9/1.8 B.
EXPECTED_GMACS = {"baseline": 0.39, "depth": 1.58, "width": 1.45, "resolution": 1.54,
                  "compound": 1.80}


def test_table7_rows_are_the_papers():
    assert [s.key for s in TABLE7] == ["baseline", "depth", "width", "resolution", "compound"]
    assert [s.paper_top1 for s in TABLE7] == [77.3, 79.0, 78.9, 79.1, 81.1]
    assert [s.paper_flops for s in TABLE7] == ["0.4B", "1.8B", "1.8B", "1.9B", "1.8B"]
    compound = spec_for("compound")
    assert (compound.width, compound.depth, compound.paper_resolution) == (1.2, 1.4, 291)


@pytest.mark.parametrize("spec", TABLE7, ids=lambda s: s.key)
def test_measured_macs_match_reference_rounding(spec):
    params, macs = measured_cost(get_family("efficientnet").architecture(spec.width, spec.depth),
                                 spec.paper_resolution)
    assert round(macs / 1e9, 2) == EXPECTED_GMACS[spec.key]
    assert params > 5e6


def test_b0_and_b3_match_torchvision_parameter_counts():
    """Table 7's baseline and compound rows built here have exactly the parameters torchvision
    publishes for B0's and B3's weights (read from its Weights enums)."""
    from torchvision.models import EfficientNet_B0_Weights, EfficientNet_B3_Weights

    family = get_family("efficientnet")
    for key, weights in (("baseline", EfficientNet_B0_Weights.IMAGENET1K_V1),
                         ("compound", EfficientNet_B3_Weights.IMAGENET1K_V1)):
        spec = spec_for(key)
        params = measured_cost(family.architecture(spec.width, spec.depth), 224)[0]
        assert params == weights.meta["num_params"]


def test_reference_rounding_of_width_and_depth():
    net = get_family("efficientnet").architecture(2.0, 4.0).build()
    blocks = [len(stage) for stage in net.features[1:-1]]
    assert blocks == [4, 8, 8, 12, 12, 16, 4]  # ceil(n * 4)
    assert net.features[-1][0].out_channels == 2560  # make_divisible(1280 * 2, 8)
    assert net.fc.in_features == 2560


def test_camnet_logits_equal_gap_fc_of_features():
    net = get_family("lite").architecture(1.0, 1.0).build().eval()
    x = torch.randn(2, 3, 64, 64)
    logits, feats = net.forward_with_features(x)
    assert torch.allclose(logits, net.fc(feats.mean((2, 3))), atol=1e-5)
    assert torch.allclose(net(x), logits, atol=1e-5)


def test_parse_model_keys_keeps_paper_order_and_rejects_unknown():
    assert parse_model_keys("compound,baseline") == ("baseline", "compound")
    with pytest.raises(KeyError, match="choose from"):
        parse_model_keys("baseline,huge")


def test_table_cli_json(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "scaled_models", "table", "--json", "--family", "lite",
         "--checkpoints", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    rows = json.loads(out.stdout)
    assert [r["key"] for r in rows] == [s.key for s in TABLE7]
    for row in rows:
        for field in ("key", "resolution", "params", "macs", "paper_flops", "paper_top1",
                      "family", "weights_source", "available", "stand_in"):
            assert field in row
        assert round(row["macs"] / 1e9, 2) == EXPECTED_GMACS[row["key"]]
        assert row["family"] == "lite"
    by_key = {r["key"]: r for r in rows}
    assert by_key["baseline"]["available"] and by_key["compound"]["available"]
    assert by_key["compound"]["run_resolution"] == 260
    assert not by_key["depth"]["available"]
    assert "scaled_models.train --model depth" in by_key["depth"]["make_available"]
    # The offline resolution column is the model shipped with scalecam, on Lite0's file, and
    # says how it does on the held-out photos beside its start and the baseline.
    resolution = by_key["resolution"]
    assert resolution["status"] == "adapted" and resolution["trained_for_config"]
    assert resolution["recipe"].startswith("adapted to 448 px from Lite0: every weight")
    assert " on 251 held-out photos of imagenet_sample_1k_half; start " in resolution["judged"]
    assert resolution["file"].endswith("scaled_models/checkpoints/lite/resolution.safetensors")


def test_table_cli_text_prints_paper_beside_measured(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "scaled_models", "table", "--family", "lite",
         "--checkpoints", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True).stdout
    assert "| 1.58G | 1.8B |" in out and "| 0.39G | 0.4B |" in out
    assert "depth: unavailable" in out and "| adapted |" in out


def test_every_table_formats_the_same_provenance_rows(lite_zoo):
    """The table command's text, the report's PDF table and the app's panel all format one typed
    row per model (``scaled_models.provenance``), so no two of them can disagree on a fact."""
    from scaled_models.provenance import format_table, provenance_cells, provenance_rows

    rows = provenance_rows(lite_zoo)
    assert [row.key for row in rows] == [s.key for s in TABLE7]
    text = format_table(lite_zoo)
    for row, model in zip(rows, lite_zoo.models):
        spec = model.column.spec
        assert (row.column, row.macs, row.run_macs) == (model.column, model.macs, model.run_macs)
        assert provenance_cells(row, lite_zoo.ladder)[:5] == [
            spec.short_label, f"{spec.coefficients}, {spec.paper_resolution} px",
            f"{row.macs / 1e9:.2f}G ({spec.paper_flops})", row.status, row.what_it_is]
        assert f"| {spec.short_label} | {row.status} | {row.headline} |" in text
        assert f"- {row.key}: " in text and row.what_it_is in text


def test_table_json_is_the_only_thing_on_stdout_when_a_download_is_tried(tmp_path):
    """With an empty torch hub cache and downloads allowed, the efficientnet family tries to
    fetch its weights; whatever that prints must not reach stdout, which is JSON only."""
    env = {k: v for k, v in os.environ.items() if k != "SCALECAM_OFFLINE"}
    env["TORCH_HOME"] = str(tmp_path / "torch")
    proc = subprocess.run(
        [sys.executable, "-m", "scaled_models", "table", "--json", "--family", "efficientnet",
         "--checkpoints", str(tmp_path / "none")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=True)
    rows = json.loads(proc.stdout)
    assert [r["key"] for r in rows] == [s.key for s in TABLE7]
    assert "downloading" in proc.stderr or "torch hub cache" in json.dumps(rows)


@pytest.mark.parametrize("family, width, depth, resolution", [
    ("efficientnet", 1.0, 1.0, 224), ("efficientnet", 1.2, 1.4, 291), ("lite", 2.0, 1.0, 224),
    ("lite", 1.1, 1.2, 260)])
def test_mac_count_agrees_with_torch_flop_counter(family, width, depth, resolution):
    """The app's fast count equals torch.utils.flop_counter's FLOPs / 2 (an independent count
    at the dispatch level) on the same network."""
    from torch.utils.flop_counter import FlopCounterMode

    from scaled_models.architectures import count_macs

    with torch.device("meta"):
        net = get_family(family).architecture(width, depth).build().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.empty(1, 3, resolution, resolution, device="meta"))
    assert count_macs(net, resolution) == counter.get_total_flops() // 2


def test_shipped_facts_are_what_the_code_derives():
    """The app's first screen reads MACs and B0's published file from
    scaled_models/derived_facts.json instead of counting ~10 networks and importing torchvision:
    the file must be for this code and these libraries and hold exactly what they derive today.
    After changing an architecture, a family or torch/torchvision, regenerate it with
    python -c "from scaled_models.zoo import write_derived_facts; write_derived_facts()"."""
    import json

    import torchvision.models as tvm

    from scaled_models.derived_facts import SHIPPED_FACTS, code_version
    from scaled_models.family import FAMILIES
    from scaled_models.zoo import _cost_key, count_cost, measured_cost, shown_architectures

    shipped = json.loads(SHIPPED_FACTS.read_text())
    assert shipped["code"] == code_version(), "derived_facts.json is stale: regenerate it"
    shown = shown_architectures()
    assert set(shipped["costs"]) == {_cost_key(arch, res) for arch, res in shown}
    for arch, resolution in shown:
        assert measured_cost(arch, resolution) == count_cost(arch, resolution)
    # B0's file, straight from torchvision's enum (not through the family's code)
    b0 = tvm.EfficientNet_B0_Weights.IMAGENET1K_V1
    assert shipped["published"]["efficientnet"]["baseline"] == {
        "url": b0.url, "source": "torchvision EfficientNet_B0_Weights.IMAGENET1K_V1"}
    assert shipped["published"] == {family.name: family.derive_published_facts()
                                    for family in FAMILIES.values()}
    # Table 7's baseline, by hand from the brief: 0.39 G MACs at 224 px
    baseline = next(a for a, r in shown if a.family == "efficientnet" and r == 224
                    and (a.width, a.depth) == (1.0, 1.0))
    assert round(measured_cost(baseline, 224)[1] / 1e9, 2) == 0.39


def test_stale_shipped_facts_are_derived_again_with_the_same_answers(tmp_path, monkeypatch,
                                                                     caplog):
    """derived_facts.json from other code (a stale digest): the first screen derives the facts
    itself — the same auto decision and reason, the same MACs — and the log says why."""
    import json

    from scaled_models import derived_facts
    from scaled_models.family import resolve_family
    from scaled_models.zoo import measured_cost

    baseline = get_family("lite").role("baseline").arch
    derived_facts._current_facts.cache_clear()
    measured_cost.cache_clear()
    fresh = resolve_family("auto"), measured_cost(baseline, 224)
    stale = tmp_path / "derived_facts.json"
    stale.write_text(json.dumps({**json.loads(derived_facts.SHIPPED_FACTS.read_text()),
                                 "code": "other code"}))
    monkeypatch.setattr(derived_facts, "SHIPPED_FACTS", stale)
    derived_facts._current_facts.cache_clear()
    measured_cost.cache_clear()
    try:
        assert derived_facts.shipped("published") == {}
        assert (resolve_family("auto"), measured_cost(baseline, 224)) == fresh
        assert "derived from other code" in caplog.text
    finally:
        derived_facts._current_facts.cache_clear()
        measured_cost.cache_clear()
