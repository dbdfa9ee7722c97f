"""The CAM engine: every selected image through every selected model, batched, cached.

The exact CAM of Zhou et al. (2016) needs one forward pass: for a GAP+FC network the map of class
c is Σ_k w_k^c A_k, with A the last feature map and w the classifier weights. The grad-cam
library's methods are run on the same feature map (``net.features``) for comparison. Models stay
loaded; a per-model lock makes the shared models safe to use from several threads (Streamlit
sessions), since gradient methods register hooks on them.
"""
from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from scaled_models.imagenet import CLASS_NAMES, class_index_of, class_label, is_wnid
from scaled_models.preprocessing import CropBox, Preprocessing
from scaled_models.zoo import LoadedModel, ModelZoo

from .fold import fold_batchnorm
from .inputs import CamImage

EXACT = "cam"
AUTOCAST_TOLERANCE = 0.02  # max difference of min-max normalised maps (1/50 of the colour scale)
METHODS: dict[str, str] = {
    EXACT: "CAM (exact, Zhou et al. 2016 — the paper's method)",
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "hirescam": "HiRes-CAM",
    "layercam": "Layer-CAM",
    "eigencam": "Eigen-CAM",
    "scorecam": "Score-CAM (slow: one forward per channel batch)",
    "ablationcam": "Ablation-CAM (slow: one forward per channel batch)",
}


def _library_class(method: str):
    import pytorch_grad_cam as pgc

    return {
        "gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "xgradcam": pgc.XGradCAM,
        "hirescam": pgc.HiResCAM, "layercam": pgc.LayerCAM, "eigencam": pgc.EigenCAM,
        "scorecam": pgc.ScoreCAM, "ablationcam": pgc.AblationCAM,
    }[method]


@dataclass(frozen=True)
class Target:
    """Which class each map explains: each model's own top-1, the ground truth, or one class."""

    mode: str  # 'predicted' | 'gt' | 'class'
    class_index: int | None = None

    @property
    def label(self) -> str:
        if self.mode == "class":
            return f"class {self.class_index} ({class_label(self.class_index)})"
        return {"predicted": "each model's prediction", "gt": "ground truth"}[self.mode]


PREDICTED = Target("predicted")
GROUND_TRUTH = Target("gt")


def parse_target(text: str) -> Target:
    """``predicted`` | ``gt`` | a class index, wnid or unique name fragment."""
    value = text.strip()
    if value.lower() in ("predicted", "pred", "top1"):
        return PREDICTED
    if value.lower() in ("gt", "ground-truth", "ground_truth", "label"):
        return GROUND_TRUTH
    if value.isdigit() and int(value) < len(CLASS_NAMES):
        return Target("class", int(value))
    if is_wnid(value):
        return Target("class", class_index_of(value))
    exact = [i for i, n in enumerate(CLASS_NAMES)
             if value.lower() in (p.strip().lower() for p in n.split(","))]
    matches = exact or [i for i, n in enumerate(CLASS_NAMES) if value.lower() in n.lower()]
    if len(matches) == 1:
        return Target("class", matches[0])
    if not matches:
        raise ValueError(f"target {text!r} is not 'predicted', 'gt', a class index, a wnid or "
                         "an ImageNet class name")
    shown = ", ".join(f"{i} {class_label(i)}" for i in matches[:6])
    raise ValueError(f"target {text!r} matches several classes ({shown}…); give the index or wnid")


@dataclass
class CamResult:
    """One map of one image by one model, with what the model predicted."""

    image_key: str
    model_key: str
    method: str
    target_class: int
    raw_map: np.ndarray  # h×w float32 at feature resolution, as computed (not normalised)
    crop_box: CropBox  # where the model's input lies in the original image
    resolution: int  # the model's input size: raw_map covers resolution × resolution pixels
    top5: list[tuple[int, float]]  # (class index, probability), best first
    target_prob: float
    elapsed_s: float
    notes: tuple[str, ...] = ()

    @property
    def pred_class(self) -> int:
        return self.top5[0][0]

    @property
    def pred_prob(self) -> float:
        return self.top5[0][1]

    def upsampled(self) -> np.ndarray:
        """The map at the model's input resolution (bilinear), aligned with its crop."""
        return cv2.resize(self.raw_map, (self.resolution, self.resolution),
                          interpolation=cv2.INTER_LINEAR)


@dataclass
class ModelRun:
    """Progress report for one model on one request: for progress bars and timings."""

    model_key: str
    images: int
    computed: int
    cached: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)


class _LRU:
    """A small thread-safe bounded mapping."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key, value) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class CamEngine:
    """Computes and caches CAMs for the models of one zoo."""

    def __init__(self, zoo: ModelZoo, *, cache_size: int = 512, batch_size: int = 16,
                 autocast: bool | None = None) -> None:
        self.zoo = zoo
        self.batch_size = batch_size
        # Reduced precision for the exact CAM: tried by default on CUDA only, and kept for a
        # model only if its first batch's maps match fp32 within AUTOCAST_TOLERANCE.
        self._try_autocast = zoo.device.type == "cuda" if autocast is None else autocast
        self.autocast_checks: dict[str, dict] = {}
        self._maps = _LRU(cache_size)
        self._inputs = _LRU(cache_size)
        self._locks = {m.key: threading.RLock() for m in zoo.models}
        # The exact CAM runs on BN-folded channels_last copies (about half the CPU time of the
        # plain forward); gradient methods hook the canonical networks.
        self._fast = {m.key: fold_batchnorm(m.net).to(memory_format=torch.channels_last)
                      for m in zoo.available()}
        self._cpu_fallback: dict[str, tuple] = {}

    @property
    def device(self) -> torch.device:
        return self.zoo.device

    def clear_cache(self) -> None:
        """Forget maps and prepared inputs (benchmarks measure the uncached path)."""
        self._maps.clear()
        self._inputs.clear()

    def compute(self, images: Sequence[CamImage], method: str = EXACT,
                target: Target = PREDICTED, model_keys: Sequence[str] | None = None,
                progress: Callable[[ModelRun], None] | None = None
                ) -> dict[tuple[str, str], CamResult]:
        """Maps keyed by (image key, model key) for every available selected model."""
        if method not in METHODS:
            raise ValueError(f"unknown CAM method {method!r}; choose from {', '.join(METHODS)}")
        if target.mode == "class" and not 0 <= (target.class_index or -1) < len(CLASS_NAMES):
            raise ValueError(f"target class must be 0..{len(CLASS_NAMES) - 1}")
        results: dict[tuple[str, str], CamResult] = {}
        for model in self.zoo.available():
            if model_keys is not None and model.key not in model_keys:
                continue
            start = time.perf_counter()
            todo = []
            for image in images:
                hit = self._maps.get(self._cache_key(image, model, method, target))
                if hit is not None:
                    results[(image.key, model.key)] = hit
                else:
                    todo.append(image)
            if todo:
                for result in self._compute_model(model, todo, method, target):
                    image = next(i for i in todo if i.key == result.image_key)
                    self._maps.put(self._cache_key(image, model, method, target), result)
                    results[(result.image_key, model.key)] = result
            if progress is not None:
                progress(ModelRun(model.key, len(images), len(todo), len(images) - len(todo),
                                  time.perf_counter() - start))
        return results

    @staticmethod
    def _cache_key(image: CamImage, model: LoadedModel, method: str, target: Target) -> tuple:
        prov = model.provenance
        wanted = target.class_index if target.mode == "class" else target.mode
        if target.mode == "gt":
            wanted = ("gt", image.gt_class)
        return (image.key, model.key, prov.sha256, prov.resolution, method, wanted)

    def class_probability(self, model_key: str, frames: np.ndarray, class_index: int,
                          chunk: int = 32) -> np.ndarray:
        """Softmax probability of one class for N×H×W×3 RGB frames in [0, 1] that are already
        the model's crop (deletion/insertion curves perturb those)."""
        model = self.zoo.get(model_key)
        mean = torch.tensor(model.preprocessing.mean).view(1, 3, 1, 1)
        std = torch.tensor(model.preprocessing.std).view(1, 3, 1, 1)
        out = []
        for start in range(0, len(frames), chunk):
            x = torch.from_numpy(np.ascontiguousarray(frames[start:start + chunk])).float()
            x = ((x.permute(0, 3, 1, 2) - mean) / std).to(self.device)
            with self._locks[model_key], torch.inference_mode():
                logits = self._fast[model_key](x.contiguous(memory_format=torch.channels_last))
                out.append(logits.float().softmax(dim=1)[:, class_index].cpu().numpy())
        return np.concatenate(out)

    def preprocess(self, image: CamImage, preprocessing: Preprocessing) -> torch.Tensor:
        """Each model's input for an image, computed once per (image, preprocessing)."""
        key = (image.key, preprocessing)
        tensor = self._inputs.get(key)
        if tensor is None:
            tensor = preprocessing(image.image)
            self._inputs.put(key, tensor)
        return tensor

    def _targets_for(self, images: Sequence[CamImage], target: Target
                     ) -> tuple[list[int | None], list[tuple[str, ...]]]:
        classes: list[int | None] = []
        notes: list[tuple[str, ...]] = []
        for image in images:
            if target.mode == "class":
                classes.append(target.class_index)
                notes.append(())
            elif target.mode == "gt" and image.gt_class is not None:
                classes.append(image.gt_class)
                notes.append(())
            elif target.mode == "gt":
                classes.append(None)
                notes.append(("no ground truth for this image: the map explains the prediction",))
            else:
                classes.append(None)
                notes.append(())
        return classes, notes

    def _compute_model(self, model: LoadedModel, images: Sequence[CamImage], method: str,
                       target: Target) -> list[CamResult]:
        classes, notes = self._targets_for(images, target)
        out: list[CamResult] = []
        for start in range(0, len(images), self.batch_size):
            chunk = list(images[start:start + self.batch_size])
            t0 = time.perf_counter()
            batch = torch.stack([self.preprocess(i, model.preprocessing) for i in chunk])
            maps, probs, chosen, oom_notes = self._run_resilient(
                model, batch, classes[start:start + len(chunk)], method)
            per_image = (time.perf_counter() - t0) / len(chunk)
            top_p, top_i = probs.topk(5, dim=1)
            for row, image in enumerate(chunk):
                out.append(CamResult(
                    image_key=image.key, model_key=model.key, method=method,
                    target_class=int(chosen[row]), raw_map=maps[row],
                    crop_box=model.preprocessing.crop_box(*image.size),
                    resolution=model.preprocessing.resolution,
                    top5=[(int(i), float(p)) for i, p in zip(top_i[row], top_p[row])],
                    target_prob=float(probs[row, chosen[row]]), elapsed_s=per_image,
                    notes=notes[start + row] + oom_notes))
        return out

    def _run(self, nets: tuple, batch: torch.Tensor, wanted: list[int | None], method: str,
             device: torch.device, key: str):
        canonical, fast = nets
        with self._locks[key]:
            if method == EXACT:
                batch = batch.to(device).contiguous(memory_format=torch.channels_last)
                return self._exact_with_precision(fast, batch, wanted, key)
            return _library_cam(canonical, batch.to(device), wanted, method)

    def _exact_with_precision(self, net, batch: torch.Tensor, wanted: list[int | None],
                              key: str):
        """fp32, or autocast once the first batch showed it changes no map beyond tolerance."""
        check = self.autocast_checks.get(key)
        if not self._try_autocast or (check is not None and not check["enabled"]):
            return _exact_cam(net, batch, wanted)
        # fp16 keeps 3 more mantissa bits than bf16; CPUs only accelerate bf16.
        dtype = torch.float16 if batch.device.type == "cuda" else torch.bfloat16
        if check is not None:
            return _exact_cam(net, batch, wanted, dtype)
        exact = _exact_cam(net, batch, wanted)
        fast = _exact_cam(net, batch, exact[2], dtype)
        error = max(float(np.abs(_unit(a) - _unit(b)).max()) for a, b in zip(exact[0], fast[0]))
        same_top1 = bool((exact[1].argmax(1) == fast[1].argmax(1)).all())
        self.autocast_checks[key] = {"dtype": str(dtype).replace("torch.", ""),
                                     "max_map_error": round(error, 5), "same_top1": same_top1,
                                     "enabled": error <= AUTOCAST_TOLERANCE and same_top1}
        return exact

    def _run_resilient(self, model: LoadedModel, batch: torch.Tensor,
                       wanted: list[int | None], method: str):
        """Out of device memory: retry in halves, then on the CPU, saying so in the notes."""
        nets = (model.net, self._fast[model.key])
        try:
            return (*self._run(nets, batch, wanted, method, self.device, model.key), ())
        except torch.OutOfMemoryError:
            _release_device_memory(self.device)
        if len(batch) > 1:
            half = len(batch) // 2
            first = self._run_resilient(model, batch[:half], wanted[:half], method)
            second = self._run_resilient(model, batch[half:], wanted[half:], method)
            note = (f"out of {self.device.type} memory: computed in smaller batches",)
            return (np.concatenate([first[0], second[0]]), torch.cat([first[1], second[1]]),
                    first[2] + second[2], tuple(dict.fromkeys(note + first[3] + second[3])))
        cpu_nets = self._cpu_nets(model)
        maps, probs, chosen = self._run(cpu_nets, batch, wanted, method, torch.device("cpu"),
                                        model.key)
        return maps, probs, chosen, (f"out of {self.device.type} memory: computed on the CPU",)

    def _cpu_nets(self, model: LoadedModel) -> tuple:
        """CPU copies for the out-of-memory fallback, made once per model when first needed."""
        if model.key not in self._cpu_fallback:
            self._cpu_fallback[model.key] = (copy.deepcopy(model.net).cpu(),
                                             copy.deepcopy(self._fast[model.key]).cpu())
        return self._cpu_fallback[model.key]


def _release_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _choose(probs: torch.Tensor, wanted: list[int | None]) -> list[int]:
    top1 = probs.argmax(dim=1).tolist()
    return [w if w is not None else t for w, t in zip(wanted, top1)]


def _unit(cam: np.ndarray) -> np.ndarray:
    span = float(cam.max() - cam.min())
    return (cam - cam.min()) / span if span > 0 else np.zeros_like(cam)


def _exact_cam(net, batch: torch.Tensor, wanted: list[int | None],
               dtype: torch.dtype | None = None) -> tuple[np.ndarray, torch.Tensor, list[int]]:
    """Forward only: logits and Σ_k w_k^c A_k for the chosen class of each image (the forward
    under autocast to ``dtype`` if given; the map's sum in fp32)."""
    with torch.inference_mode():
        with torch.autocast(batch.device.type, dtype=dtype, enabled=dtype is not None):
            logits, features = net.forward_with_features(batch)
        probs = logits.float().softmax(dim=1).cpu()
        chosen = _choose(probs, wanted)
        weights = net.fc.weight[torch.tensor(chosen, device=features.device)]
        maps = torch.einsum("bchw,bc->bhw", features.float(), weights.float())
    return maps.cpu().numpy().astype(np.float32), probs, chosen


def _library_cam(net, batch: torch.Tensor, wanted: list[int | None], method: str
                 ) -> tuple[np.ndarray, torch.Tensor, list[int]]:
    """A pytorch-grad-cam method on ``net.features``, kept at feature resolution. Gradients
    flow from the input, so the shared model's parameters are never switched to
    ``requires_grad``; the library's hooks are removed on exit, even after an error."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    layer = net.features
    with _library_class(method)(model=net, target_layers=[layer]) as cam:
        cam.batch_size = 32
        inputs = batch.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            outputs = cam.activations_and_grads(inputs)
            probs = outputs.detach().float().softmax(dim=1).cpu()
            chosen = _choose(probs, wanted)
            targets = [ClassifierOutputTarget(c) for c in chosen]
            cam.outputs = outputs
            if cam.uses_gradients:
                sum(t(o) for t, o in zip(targets, outputs)).backward()
        activations = cam.activations_and_grads.activations[0].cpu().numpy()
        grads = (cam.activations_and_grads.gradients[0].cpu().numpy()
                 if cam.activations_and_grads.gradients else None)
        maps = cam.get_cam_image(inputs.detach(), layer, targets, activations, grads, False)
    return np.maximum(maps, 0).astype(np.float32), probs, chosen
