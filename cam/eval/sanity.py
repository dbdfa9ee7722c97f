"""Are the maps about the model? Three sanity checks for any CAM method on any model.

- **Cascading model-parameter randomisation** (Adebayo et al., "Sanity Checks for Saliency
  Maps", NeurIPS 2018): the network is re-initialised from the top down, block by block
  (``cascade``); after each step the map of the same image and the same class (the trained
  model's prediction) is compared with the trained model's map by Spearman's rank correlation of
  the absolute values (and without them), and by SSIM, as in the paper's Figures 2–4. A map that
  depends on the learned weights falls towards 0; one that stays near 1 shows the image, not
  the model.
- **Efficient MPRT** (Hedström et al., "Sanity Checks Revisited: An Exploration to Repair the
  Model Parameter Randomisation Test", 2023/2024): the relative rise in the map's complexity,
  (H(ê) − H(e)) / H(e), from the trained network (e) to the fully randomised one (ê), H the
  entropy of the map's 100-bin histogram (``metrics.histogram_entropy``). A map of a random
  network should be noise, more complex than the trained map: higher is better.
- **Random logit** (Sixt, Granz & Landgraf, "When Explanations Lie: Why Many Modified BP
  Attributions Fail", ICML 2020): SSIM between the map of the predicted class and the map of
  another class, drawn uniformly from the other 999 with a recorded seed (``random_class``). A
  map that explains the class differs; 1 means the method ignores the class. Eigen-CAM, the
  first principal component of the activations, is the same map for every class by construction.

**Where maps are compared.** Each map is resampled (bilinear, ``geometry.map_in_region``) from
the model's own input crop onto ``EVAL_SIZE`` × ``EVAL_SIZE`` pixels of that crop, the grid of the
other per-image metrics: the trained and randomised maps of one model share the crop, so no
common region with other models is needed. Spearman is on absolute values as Adebayo et al.
report first (the exact CAM is signed; the library's maps are already ReLU'd, so for them the
two coincide); SSIM on the maps min-max scaled to [0, 1] (data range 1), exactly as the grid
shows them (the signed exact CAM keeps its sign: its most negative pixel is 0; absolute values
here would make the random class's negative evidence look like positive evidence); eMPRT's
entropy on the map as computed. Deviations from the papers: the randomisation's
granularity and initialisation (``cascade``), and SSIM on the 224-px grid of a 7×7 to 14×14
feature map (bilinear upsampling makes SSIM's 11-px windows see a smooth map; the papers'
saliency maps are at input resolution to begin with).

Maps come from the same functions the engine uses (``methods.exact_cam``, ``methods.library_cam``)
on the trained network and on one randomised deep copy at a time, never on the engine's folded
copies, so the trained map and its randomised versions are computed the same way. Library
methods take ``safe_io.heavy.HEAVY_STEP``, as in the engine: one such computation at a time; the
trained network's maps are computed inside ``CamEngine.hooking``, as other sessions use it too.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cam.engine.cascade import CascadeStep, randomised_copies
from cam.engine.engine import CamEngine
from cam.engine.geometry import map_in_region
from cam.engine.inputs import CamImage
from cam.engine.maps import minmax
from cam.engine.methods import EXACT, CamMethod, exact_cam, library_cam
from cam.eval.agreement import EVAL_SIZE
from cam.eval.metrics import spearman_rank_correlation
from cam.eval.metrics.similarity import histogram_entropy, ssim
from cam.eval.rows import SanityRow
from safe_io.heavy import HEAVY_STEP
from scaled_models.architectures import NUM_CLASSES, CamNet
from scaled_models.preprocessing import CropBox
from scaled_models.zoo import LoadedModel

SEED = 0  # the default seed of the randomised weights and of the random class
# Which cascade steps get a map: every block, or only the step that completes each stage (fc,
# head, each of the seven stages, stem: 10 maps instead of 19 for Lite0), for the methods that
# cost a forward pass per feature channel.
GRANULARITIES = ("blocks", "stages")
# Raised whenever a definition here or in ``cascade``/``similarity`` changes what a check
# returns, so that ``--resume`` never adds rows measured otherwise.
SANITY_DEFINITIONS_VERSION = 1


def random_class(image_key: str, predicted: int, seed: int = SEED) -> int:
    """The random logit of Sixt et al.: a class other than ``predicted``, uniform over the other
    ``NUM_CLASSES - 1``, drawn from (``seed``, the image's content key) only, so every model and
    method of one image draws the same class unless their predictions differ, and a rerun draws
    it again."""
    digest = int.from_bytes(hashlib.sha256(image_key.encode()).digest()[:8], "big")
    drawn = int(np.random.default_rng([seed, digest]).integers(NUM_CLASSES - 1))
    return drawn + (drawn >= predicted)


@dataclass(frozen=True, eq=False)
class CascadeMaps:
    """One image's maps by one model and method through the cascade, raw (at feature
    resolution, as the method computed them): the trained network's, one per recorded step,
    and the trained network's map of the random class."""

    image_id: str
    image_key: str
    model_key: str
    method: CamMethod
    seed: int
    target_class: int  # the trained model's prediction: every cascade map explains it
    target_prob: float
    random_class: int
    crop_box: CropBox  # the model's input in photo pixels
    steps: tuple[CascadeStep, ...]  # the recorded steps, in cascade order
    trained: np.ndarray
    randomised: tuple[np.ndarray, ...]  # one per recorded step
    random_logit: np.ndarray

    def on_grid(self, raw: np.ndarray) -> np.ndarray:
        """A raw map resampled onto the ``EVAL_SIZE`` grid of the model's crop: where it is
        compared."""
        return map_in_region(raw, self.crop_box, self.crop_box, EVAL_SIZE)


@dataclass(frozen=True)
class SanityScores:
    """The three checks of one ``CascadeMaps``: per recorded step (cascade order) the similarity
    with the trained map; eMPRT from the last step (the fully randomised network, when every
    step was recorded or the last one is); the random-logit SSIM."""

    spearman_abs: tuple[float, ...]  # nan where a map is constant (no ranking)
    spearman: tuple[float, ...]
    ssim: tuple[float, ...]
    entropy_trained: float
    entropy_randomised: float
    emprt: float  # nan when the trained map is constant (entropy 0)
    random_logit_ssim: float


def _shown(values: np.ndarray) -> np.ndarray:
    """A map as SSIM compares it: min-max scaled to [0, 1], as the grid draws it."""
    return minmax(values)


def score(maps: CascadeMaps) -> SanityScores:
    """The checks' numbers for one image, model and method (see the module's docstring)."""
    trained = maps.on_grid(maps.trained)
    randomised = [maps.on_grid(m) for m in maps.randomised]
    entropy_trained = histogram_entropy(trained)
    entropy_randomised = histogram_entropy(randomised[-1])
    return SanityScores(
        spearman_abs=tuple(spearman_rank_correlation(np.abs(trained), np.abs(m))
                           for m in randomised),
        spearman=tuple(spearman_rank_correlation(trained, m) for m in randomised),
        ssim=tuple(ssim(_shown(trained), _shown(m)) for m in randomised),
        entropy_trained=entropy_trained, entropy_randomised=entropy_randomised,
        emprt=((entropy_randomised - entropy_trained) / entropy_trained
               if entropy_trained > 0 else float("nan")),
        random_logit_ssim=ssim(_shown(trained), _shown(maps.on_grid(maps.random_logit))))


def _maps(net: CamNet, method: CamMethod, batch: torch.Tensor, classes: Sequence[int | None],
          step: int) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Maps, explained classes and their probabilities, ``step`` images per forward pass."""
    maps, chosen, probs = [], [], []
    for start in range(0, len(batch), step):
        part, wanted = batch[start:start + step], list(classes[start:start + step])
        if method == EXACT:
            raw, p, c = exact_cam(net, part, wanted)
        else:
            with HEAVY_STEP:
                raw, p, c = library_cam(net, part, wanted, method)
        maps += list(raw)
        chosen += c
        probs += [float(p[i, k]) for i, k in enumerate(c)]
    return maps, chosen, probs


def cascade_maps(engine: CamEngine, images: Sequence[CamImage], model: LoadedModel,
                 method: CamMethod, seed: int = SEED, granularity: str = "blocks",
                 progress: Callable[[CascadeStep | None], None] | None = None
                 ) -> list[CascadeMaps]:
    """Each image's ``CascadeMaps`` for one available model and method. The trained maps
    explain each image's predicted class; every cascade step explains the same class.
    ``granularity`` is ``"blocks"`` (a map after every step) or ``"stages"`` (after the steps
    that complete a stage; the cascade still randomises block by block). ``progress(step)`` is
    called after the trained maps (``None``) and after each recorded step. One randomised copy
    of the model is alive during the call, and freed after."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, "
                         f"got {granularity!r}")
    if not images:
        return []
    device = engine.device
    batch = torch.stack([engine.preprocess(i, model.preprocessing) for i in images]).to(device)
    step = engine.batch_size_for(model, method)
    with engine.hooking(model.key):  # the resident network, which other sessions also run
        trained, predicted, probs = _maps(model.net, method, batch, [None] * len(images), step)
        drawn = [random_class(i.key, c, seed) for i, c in zip(images, predicted)]
        random_logit, _, _ = _maps(model.net, method, batch, drawn, step)
    if progress is not None:
        progress(None)
    steps: list[CascadeStep] = []
    randomised: list[list[np.ndarray]] = []
    with engine.resident(model.key):  # its copies are made one by one along the cascade
        for cascade_step, net in randomised_copies(model.net, seed):
            if granularity == "stages" and not cascade_step.ends_stage:
                continue
            maps, _, _ = _maps(net, method, batch, predicted, step)
            steps.append(cascade_step)
            randomised.append(maps)
            if progress is not None:
                progress(cascade_step)
    return [CascadeMaps(
        image_id=image.image_id, image_key=image.key, model_key=model.key, method=method,
        seed=seed, target_class=int(predicted[i]), target_prob=probs[i],
        random_class=int(drawn[i]), crop_box=model.preprocessing.crop_box(*image.size),
        steps=tuple(steps), trained=trained[i],
        randomised=tuple(maps[i] for maps in randomised), random_logit=random_logit[i])
        for i, image in enumerate(images)]


def sanity_row(maps: CascadeMaps, family: str) -> SanityRow:
    """The CSV row of one image's checks (``score``) for one model and method."""
    scores = score(maps)
    return SanityRow(
        image_id=maps.image_id, model=maps.model_key, method=maps.method.key, family=family,
        seed=maps.seed, target_class=maps.target_class, target_prob=maps.target_prob,
        random_class=maps.random_class, steps=tuple(s.label for s in maps.steps),
        spearman_abs=scores.spearman_abs, spearman=scores.spearman, ssim=scores.ssim,
        entropy_trained=scores.entropy_trained, entropy_randomised=scores.entropy_randomised,
        emprt=scores.emprt, random_logit_ssim=scores.random_logit_ssim)
