"""The CAM engine: every selected image through every selected model, batched, cached.

What each method computes lives in ``methods``; which class a map explains in ``targets``. The
engine adds what a shared server needs: models stay loaded; maps are cached by (image content,
model weights, method, explained class); the shared models are safe to use from several threads
(Streamlit sessions): grad-cam library methods register hooks on the canonical networks, and run
one at a time (``safe_io.heavy``), while the exact CAM and the deletion curves run under a
per-network lock on the network's inference form (``_Inference``). Where that form is a separate
BN-folded copy (the EfficientNets), a long Score-CAM never holds up another session's exact CAM of
the same model; a ResNet has no copy, so a library method on it holds its lock too. A server can let
an idle network's weights go (``park_idle``): the next computation that needs it reads them
again from their file; an engine made ``one_network_at_a_time`` lets each go as soon as its maps
are drawn, so a draw holds one network's weights, not a ladder's. An out-of-memory error on the
GPU retries in smaller batches, then on the CPU.
"""
from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import cv2
import numpy as np
import torch

from cam.engine.cache import BoundedCache
from cam.engine.fold import fold_batchnorm, folding_pays
from cam.engine.heap import retained_heap
from cam.engine.inputs import CamImage
from cam.engine.maps import minmax
from cam.engine.methods import (
    EXACT,
    CamMethod,
    exact_cam,
    forward_passes_per_image,
    library_cam,
)
from cam.engine.targets import PREDICTED, Target
from safe_io.digest_store import DigestStore, digest
from safe_io.heavy import HEAVY_STEP
from scaled_models.architectures import CamNet
from scaled_models.family import FAMILIES
from scaled_models.preprocessing import CropBox, Preprocessing
from scaled_models.zoo import LoadedModel, ModelZoo

# Part of every stored map's digest: raised when what a stored map means changes (how the exact
# CAM or a library method computes it), so no older map is read as a new one.
MAP_STORE_FORMAT = 1
AUTOCAST_TOLERANCE = 0.02  # max difference of min-max normalised maps (1/50 of the colour scale)
# Below this probability a prediction is marked as one nobody should trust (captions), and a
# faithfulness AUC as measuring little (its curve can barely fall).
LOW_CONFIDENCE = 0.10
# A library method keeps every activation of its batch for the backward pass (about 2 GB for six
# 448 px images): its batches are cut to this many input pixels (one 448 px image, or five at
# 260 px), and one such computation runs at a time across all models and sessions, and never
# beside a near-limit image decode (``safe_io.heavy``).
LIBRARY_BATCH_PIXELS = 4 * 300 * 300
# On a CPU the exact CAM's batches are cut to this many input pixels (four images at 224 px, one
# at 448 px): there smaller batches run faster, their activations staying in cache (2-core CPU,
# Lite0 and Lite2 on 16 images: 0.64 s in batches of 4, 1.01 s in one batch of 16), and the
# memory a large input takes falls (ResNet-50 at 448 px, 8 images: +107 MB in batches of 2,
# +374 MB in one). A GPU takes the whole batch.
EXACT_CPU_BATCH_PIXELS = 4 * 224 * 224


@dataclass
class CamResult:
    """One map of one image by one model, with what the model predicted."""

    image_key: str
    model_key: str
    method: CamMethod
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

    @property
    def low_confidence(self) -> bool:
        return self.pred_prob < LOW_CONFIDENCE

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
    cached: int  # from memory or from the disk store
    elapsed_s: float
    from_disk: int = 0  # of ``cached``: read from the disk store (a map an earlier run made)


def _result_bytes(result: CamResult) -> int:
    return result.raw_map.nbytes + 512  # the map plus the record's small fields


def _tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.element_size() * tensor.nelement()


class CamEngine:
    """Computes and caches CAMs for the models of one zoo; safe to share between threads."""

    def __init__(self, zoo: ModelZoo, *, cache_mb: float = 64, inputs_cache_mb: float = 128,
                 batch_size: int = 16, autocast: bool | None = None,
                 store: DigestStore | None = None, one_network_at_a_time: bool = False) -> None:
        """``store`` keeps computed maps on disk beyond this process (``map_digest`` says what
        a map's name covers); a server's second start then draws its first grid from it.
        ``one_network_at_a_time``: ``compute`` lets a network's weights go once the maps that
        need it are drawn (the next draw reads them again: 0.15-0.36 s per ResNet here), so a
        server holds one of a ladder's networks at a time while it draws, not all four (0.76 GB
        for the ``resnet`` ladder) until ``park_idle`` finds them idle."""
        self.zoo = zoo
        self.store = store
        self.one_network_at_a_time = one_network_at_a_time
        self.batch_size = batch_size
        # Reduced precision for the exact CAM: tried by default on CUDA only, and kept for a
        # model only if its first batch's maps match fp32 within AUTOCAST_TOLERANCE.
        self._try_autocast = zoo.device.type == "cuda" if autocast is None else autocast
        self.autocast_checks: dict[str, dict] = {}
        self._maps = BoundedCache(int(cache_mb * 2**20), _result_bytes)
        self._inputs = BoundedCache(int(inputs_cache_mb * 2**20), _tensor_bytes)
        # Each network's inference form (``_Inference``), made when a model is first asked for
        # an exact CAM. Columns that share a network (ResNet-50 and ResNet-50 at 448 px) share
        # its form and its lock.
        slots: dict[int, _Inference] = {}
        for model in zoo.available():
            slots.setdefault(id(model.net), _Inference(
                model.net, partial(zoo.reload_network, model.key)))
        self._inference = {m.key: slots[id(m.net)] for m in zoo.available()}
        self._cpu_fallback: dict[str, tuple] = {}
        self._probed: dict[str, int] = {}  # a LibraryNet's forward passes per image (slow methods)
        # One lock per (model, method, target): a second caller asking for the same maps
        # waits for the first and takes them from the cache rather than computing them again
        # (two visitors' first pages, or one and the server's own ``app.warm_up``).
        self._computations: dict[tuple, threading.RLock] = {}
        self._computations_guard = threading.Lock()

    @property
    def device(self) -> torch.device:
        return self.zoo.device

    def clear_cache(self) -> None:
        """Forget maps and prepared inputs (benchmarks measure the uncached path)."""
        self._maps.clear()
        self._inputs.clear()

    @staticmethod
    def cannot_run(model: LoadedModel, method: CamMethod) -> str | None:
        """Why ``method`` is not defined for ``model`` (the exact CAM needs features → GAP →
        one linear layer), or ``None`` when it runs."""
        if method == EXACT and not isinstance(model.net, CamNet):
            return model.net.why_not_exact
        return None

    def compute(self, images: Sequence[CamImage], method: CamMethod = EXACT,
                target: Target = PREDICTED, model_keys: Sequence[str] | None = None,
                progress: Callable[[ModelRun], None] | None = None
                ) -> dict[tuple[str, str], CamResult]:
        """Maps keyed by (image key, model key) for every available selected model that
        ``method`` is defined for (``cannot_run`` says why not)."""
        with self._heap():
            return self._compute(images, method, target, model_keys, progress)

    def _heap(self) -> AbstractContextManager[None]:
        """On a CPU the networks' freed activations stay in the heap while they run
        (``heap.retained_heap``)."""
        return retained_heap() if self.device.type == "cpu" else nullcontext()

    def _compute(self, images: Sequence[CamImage], method: CamMethod, target: Target,
                 model_keys: Sequence[str] | None,
                 progress: Callable[[ModelRun], None] | None
                 ) -> dict[tuple[str, str], CamResult]:
        results: dict[tuple[str, str], CamResult] = {}
        for model in self.zoo.available():
            if model_keys is not None and model.key not in model_keys:
                continue
            if self.cannot_run(model, method):
                continue
            start = time.perf_counter()
            todo, from_disk = [], 0
            with self._computation(model.key, method, target):
                for image in images:
                    key = self._cache_key(image, model, method, target)
                    hit = self._maps.get(key)
                    if hit is None:
                        hit = self._stored(image, model, method, target)
                        if hit is not None:
                            from_disk += 1
                            self._maps.put(key, hit)
                    if hit is not None:
                        results[(image.key, model.key)] = hit
                    else:
                        todo.append(image)
                if todo and self.one_network_at_a_time:
                    self.park_idle(0.0, keep=model.key)
                for image, result in zip(todo, self._compute_model(model, todo, method, target)):
                    self._maps.put(self._cache_key(image, model, method, target), result)
                    self._store_result(image, model, target, result)
                    results[(image.key, model.key)] = result
            if progress is not None:
                progress(ModelRun(model.key, len(images), len(todo), len(images) - len(todo),
                                  time.perf_counter() - start, from_disk))
        if self.one_network_at_a_time:
            self.park_idle(0.0)
        return results

    def _computation(self, model_key: str, method: CamMethod, target: Target
                     ) -> threading.RLock:
        with self._computations_guard:
            return self._computations.setdefault((model_key, method.key, target),
                                                 threading.RLock())

    def map_digest(self, image: CamImage, model: LoadedModel, method: CamMethod,
                   target: Target) -> str | None:
        """The disk store's name for one map: a digest of everything the map depends on (the
        weights' sha256, the image's content hash, the method, the explained class, the
        preprocessing, how a brought model was wrapped, the device type and whether reduced
        precision may be used), of the code and libraries that compute it
        (``map_code_version``) and of the store's format. ``None`` for weights without a
        sha256 (nothing to key them by)."""
        prov = model.provenance
        if prov.sha256 is None:
            return None
        brought = prov.family not in FAMILIES  # its wrapping is named by its column key
        return digest({"format": MAP_STORE_FORMAT, "code": map_code_version(),
                       "weights": prov.sha256, "image": image.key, "method": method.key,
                       "class": target.resolve(image), "note": target.note(image),
                       "preprocessing": repr(model.preprocessing),
                       "brought": model.column.key if brought else None,
                       "device": self.device.type, "autocast": self._try_autocast})

    def _stored(self, image: CamImage, model: LoadedModel, method: CamMethod,
                target: Target) -> CamResult | None:
        name = None if self.store is None else self.map_digest(image, model, method, target)
        found = None if name is None else self.store.get(name)
        if found is None:
            return None
        arrays, record = found
        try:
            return CamResult(
                image_key=image.key, model_key=model.key, method=method,
                target_class=int(record["target_class"]), raw_map=arrays["raw_map"],
                crop_box=model.preprocessing.crop_box(*image.size),
                resolution=model.preprocessing.resolution,
                top5=[(int(i), float(p)) for i, p in record["top5"]],
                target_prob=float(record["target_prob"]), elapsed_s=0.0,
                notes=tuple(record["notes"]))
        except (KeyError, TypeError, ValueError):  # a record of another shape: recompute
            return None

    def _store_result(self, image: CamImage, model: LoadedModel, target: Target,
                      result: CamResult) -> None:
        name = (None if self.store is None
                else self.map_digest(image, model, result.method, target))
        # a map made under memory pressure says so in its notes, about that run only: not kept
        if name is not None and set(result.notes) <= {target.note(image)}:
            self.store.put(name, {"raw_map": result.raw_map}, {
                "target_class": result.target_class, "top5": result.top5,
                "target_prob": result.target_prob, "notes": list(result.notes)})

    @staticmethod
    def _cache_key(image: CamImage, model: LoadedModel, method: CamMethod, target: Target
                   ) -> tuple:
        prov = model.provenance
        return (image.key, model.key, prov.sha256, prov.resolution, method.key,
                target.resolve(image), target.note(image))

    def class_probability(self, model_key: str, frames: np.ndarray, class_index: int,
                          chunk: int = 32) -> np.ndarray:
        """Softmax probability of one class for N×H×W×3 RGB frames in [0, 1] that are already
        the model's crop (deletion/insertion curves perturb those)."""
        model = self.zoo.get(model_key)
        slot = self._inference[model_key]
        out = []
        with self._heap():
            for start in range(0, len(frames), chunk):
                x = torch.from_numpy(np.ascontiguousarray(frames[start:start + chunk])).float()
                x = model.preprocessing.normalize_tensor(x.permute(0, 3, 1, 2)).to(self.device)
                with slot.use(), slot.lock, torch.inference_mode():
                    logits = slot.net()(x.contiguous(memory_format=torch.channels_last))
                    out.append(logits.float().softmax(dim=1)[:, class_index].cpu().numpy())
        return np.concatenate(out)

    @contextmanager
    def hooking(self, model_key: str) -> Iterator[None]:
        """Hold what a computation needs that may register hooks on ``model_key``'s resident
        (canonical) network — a library method, the sanity checks' maps of the trained model:
        the one-at-a-time heavy step, and the network's lock where the exact CAM runs on that
        same network (a hook would see the other session's forward pass)."""
        slot = self._inference[model_key]
        with slot.use(), HEAVY_STEP, (nullcontext() if slot.separate else slot.lock):
            yield

    @contextmanager
    def resident(self, model_key: str) -> Iterator[LoadedModel]:
        """``model_key``'s column with its network's weights in memory (read again if
        ``park_idle`` let them go) and kept there until the block ends: for whatever uses
        ``model.net`` itself, e.g. copying it for the sanity checks' cascade."""
        with self._inference[model_key].use():
            yield self.zoo.get(model_key)

    def forward_passes(self, method: CamMethod, model_key: str) -> int:
        """``methods.forward_passes_per_image`` for one column. A ``CamNet`` is counted from its
        classifier's shape (parked weights are not read back for it); a ``LibraryNet`` needs a
        probe through the shared network, run once per model as a library method runs
        (``hooking``: another session's hooks must not see it) and remembered."""
        model = self.zoo.get(model_key)
        if not method.slow or isinstance(model.net, CamNet):
            return forward_passes_per_image(method, model.net)
        if model_key not in self._probed:
            with self.hooking(model_key):
                self._probed[model_key] = forward_passes_per_image(method, model.net)
        return self._probed[model_key]

    def park_idle(self, idle_s: float, keep: str | None = None) -> list[str]:
        """Let go of the weights of every network, but ``keep``'s, that no computation has used
        for ``idle_s`` seconds and none is using now (the columns keep their cached maps; the next
        computation that needs the network reads it again, about 0.15 s for ResNet-50 and
        0.36 s for ResNet-152 here). Returns the keys of the columns whose network went. A
        server calls this for ladders other than its first screen's, so an idle visitor of
        the ``resnet`` ladder does not hold its 0.76 GB while others compute."""
        kept = self._inference.get(keep) if keep is not None else None
        parked = {id(slot) for slot in set(self._inference.values())
                  if slot is not kept and slot.park(idle_s)}
        keys = [k for k, slot in self._inference.items() if id(slot) in parked]
        for key in keys:
            self._cpu_fallback.pop(key, None)
        return keys

    def preprocess(self, image: CamImage, preprocessing: Preprocessing) -> torch.Tensor:
        """Each model's input for an image, computed once per (image, preprocessing)."""
        key = (image.key, preprocessing)
        tensor = self._inputs.get(key)
        if tensor is None:
            tensor = preprocessing(image.image)
            self._inputs.put(key, tensor)
        return tensor

    def _compute_model(self, model: LoadedModel, images: Sequence[CamImage],
                       method: CamMethod, target: Target) -> list[CamResult]:
        classes = [target.resolve(image) for image in images]
        out: list[CamResult] = []
        step = self.batch_size_for(model, method)
        for start in range(0, len(images), step):
            chunk = list(images[start:start + step])
            t0 = time.perf_counter()
            batch = torch.stack([self.preprocess(i, model.preprocessing) for i in chunk])
            maps, probs, chosen, oom_notes = self._run_resilient(
                model, batch, classes[start:start + len(chunk)], method)
            per_image = (time.perf_counter() - t0) / len(chunk)
            top_p, top_i = probs.topk(5, dim=1)
            for row, image in enumerate(chunk):
                note = target.note(image)
                out.append(CamResult(
                    image_key=image.key, model_key=model.key, method=method,
                    target_class=int(chosen[row]), raw_map=maps[row],
                    crop_box=model.preprocessing.crop_box(*image.size),
                    resolution=model.preprocessing.resolution,
                    top5=[(int(i), float(p)) for i, p in zip(top_i[row], top_p[row])],
                    target_prob=float(probs[row, chosen[row]]), elapsed_s=per_image,
                    notes=((note,) if note else ()) + oom_notes))
        return out

    def batch_size_for(self, model: LoadedModel, method: CamMethod) -> int:
        """Images per forward pass for ``model`` and ``method``: ``batch_size``, cut for a
        library method to ``LIBRARY_BATCH_PIXELS`` and on a CPU for the exact CAM to
        ``EXACT_CPU_BATCH_PIXELS`` (whoever else runs these networks batches the same way)."""
        pixels = model.preprocessing.resolution ** 2
        if method != EXACT:
            return max(1, min(self.batch_size, LIBRARY_BATCH_PIXELS // pixels))
        if self.device.type != "cpu":
            return self.batch_size
        return max(1, min(self.batch_size, EXACT_CPU_BATCH_PIXELS // pixels))

    def _run(self, nets: tuple, batch: torch.Tensor, classes: list[int | None],
             method: CamMethod, device: torch.device, key: str):
        canonical, inference = nets
        if method == EXACT:
            with inference.use(), inference.lock:
                batch = batch.to(device).contiguous(memory_format=torch.channels_last)
                return self._exact_with_precision(inference.net(), batch, classes, key)
        with inference.use(), HEAVY_STEP, (nullcontext() if inference.separate
                                           else inference.lock):
            return library_cam(canonical, batch.to(device), classes, method)

    def _exact_with_precision(self, net, batch: torch.Tensor, classes: list[int | None],
                              key: str):
        """fp32, or autocast once the first batch showed it changes no map beyond tolerance."""
        check = self.autocast_checks.get(key)
        if not self._try_autocast or (check is not None and not check["enabled"]):
            return exact_cam(net, batch, classes)
        # fp16 keeps 3 more mantissa bits than bf16; CPUs only accelerate bf16.
        dtype = torch.float16 if batch.device.type == "cuda" else torch.bfloat16
        if check is not None:
            return exact_cam(net, batch, classes, dtype)
        exact = exact_cam(net, batch, classes)
        fast = exact_cam(net, batch, exact[2], dtype)
        error = max(float(np.abs(minmax(a) - minmax(b)).max())
                    for a, b in zip(exact[0], fast[0]))
        same_top1 = bool((exact[1].argmax(1) == fast[1].argmax(1)).all())
        self.autocast_checks[key] = {"dtype": str(dtype).replace("torch.", ""),
                                     "max_map_error": round(error, 5), "same_top1": same_top1,
                                     "enabled": error <= AUTOCAST_TOLERANCE and same_top1}
        return exact

    def _run_resilient(self, model: LoadedModel, batch: torch.Tensor,
                       classes: list[int | None], method: CamMethod):
        """Out of device memory: retry in halves, then on the CPU, saying so in the notes."""
        nets = (model.net, self._inference[model.key])
        try:
            return (*self._run(nets, batch, classes, method, self.device, model.key), ())
        except torch.OutOfMemoryError:
            _release_device_memory(self.device)
        if len(batch) > 1:
            half = len(batch) // 2
            first = self._run_resilient(model, batch[:half], classes[:half], method)
            second = self._run_resilient(model, batch[half:], classes[half:], method)
            note = (f"out of {self.device.type} memory: computed in smaller batches",)
            return (np.concatenate([first[0], second[0]]), torch.cat([first[1], second[1]]),
                    first[2] + second[2], tuple(dict.fromkeys(note + first[3] + second[3])))
        cpu_nets = self._cpu_nets(model)
        maps, probs, chosen = self._run(cpu_nets, batch, classes, method, torch.device("cpu"),
                                        model.key)
        return maps, probs, chosen, (f"out of {self.device.type} memory: computed on the CPU",)

    def _cpu_nets(self, model: LoadedModel) -> tuple:
        """CPU copies for the out-of-memory fallback, made once per model when first needed."""
        if model.key not in self._cpu_fallback:
            with self.resident(model.key):
                canonical = copy.deepcopy(model.net).cpu()
            self._cpu_fallback[model.key] = (canonical, _Inference(canonical))
        return self._cpu_fallback[model.key]


@lru_cache(maxsize=1)
def map_code_version() -> str:
    """A digest of what turns weights and a photo into a map beyond the weights themselves: the
    source of the decoder, the networks, the preprocessing and this engine's methods, and the
    versions of the libraries they call. A stored map made by other code is another name."""
    from importlib import metadata

    import PIL

    root = Path(__file__).resolve().parents[2]
    sources = sorted([*(root / "cam" / "engine").glob("*.py"),
                      *(root / "scaled_models").glob("*.py"), root / "safe_io" / "images.py"])
    parts = {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sources}
    parts |= {"torch": torch.__version__, "numpy": np.__version__, "pillow": PIL.__version__}
    for package in ("grad-cam", "timm", "torchvision"):
        try:
            parts[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            parts[package] = "absent"
    return digest(parts)


class _Inference:
    """The network the exact CAM and the deletion curves run on, made on first use under its
    lock (which also serialises those runs): where folding pays (``fold.folding_pays``), a
    BN-folded channels_last copy, about half the CPU time of the plain forward on an
    EfficientNet; else the canonical network itself, which costs no memory: on a ResNet the
    copy gains nothing (ResNet-50, 6 images at 224 px on a 2-core CPU: 0.46 s folded, 0.37 s
    plain with channels_last input) and the ``resnet`` ladder's copies would weigh 0.76 GB.

    Every computation on the network, the canonical one included, runs inside ``use()``: that
    brings the weights back if ``park`` let them go (``reload`` reads them from their file) and
    keeps them until the last user is done, so parking never pulls weights from under a
    forward pass. Without ``reload`` (the out-of-memory fallback's CPU copy) it never parks.
    Its own small lock guards that state, never held while a network runs: a count of users
    never waits behind a long Score-CAM holding ``lock``."""

    def __init__(self, canonical: torch.nn.Module,
                 reload: Callable[[], torch.nn.Module] | None = None) -> None:
        self.lock = threading.RLock()
        self._canonical = canonical
        self._reload = reload
        self.separate = folding_pays(canonical)
        self._net: torch.nn.Module | None = None
        self._state = threading.Lock()  # guards the three below
        self._users = 0
        self._parked = False
        self._last_used = time.monotonic()

    @contextmanager
    def use(self) -> Iterator[None]:
        """Keep the weights where they are until the block ends, first reading them back if
        they were parked."""
        with self._state:
            if self._parked:
                _adopt(self._canonical, self._reload())
                self._parked = False
            self._users += 1
        try:
            yield
        finally:
            with self._state:
                self._users -= 1
                self._last_used = time.monotonic()

    def park(self, idle_s: float) -> bool:
        """Free the weights (and the folded copy) if nobody has used them for ``idle_s``
        seconds and nobody uses them now; never waits for a running computation."""
        if self._reload is None:
            return False
        with self._state:
            if self._parked or self._users or time.monotonic() - self._last_used < idle_s:
                return False
            self._canonical.to_empty(device="meta")  # the modules stay; their storage goes
            self._net = None
            self._parked = True
            return True

    def net(self) -> torch.nn.Module:
        with self.lock:
            if self._net is None:
                self._net = (fold_batchnorm(self._canonical).to(memory_format=torch.channels_last)
                             if self.separate else self._canonical)
            return self._net


def _adopt(parked: torch.nn.Module, fresh: torch.nn.Module) -> None:
    """Give ``parked`` (its tensors on the meta device) the tensors of ``fresh``, the same
    network loaded again: its state dict, then the buffers a state dict leaves out
    (``persistent=False``)."""
    parked.load_state_dict(fresh.state_dict(), assign=True)
    buffers = dict(fresh.named_buffers())
    for name, buffer in list(parked.named_buffers()):
        if buffer.is_meta:
            owner, _, attribute = name.rpartition(".")
            parked.get_submodule(owner).register_buffer(attribute, buffers[name],
                                                        persistent=False)
    parked.requires_grad_(False)


def _release_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
