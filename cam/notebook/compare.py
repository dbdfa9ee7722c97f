"""``compare``: the Figure 7 grid and its numbers in one call, for a Jupyter notebook.

    from cam import compare
    result = compare(["sample_images/chelsea.png", "sample_images/coffee.png"],
                     family="lite", method="cam")
    result.figure   # the grid as a matplotlib Figure, drawn as ``python -m cam figure`` draws it
    result.rows     # one CompareRow per (image, model that ran): prediction, probability, map

It is the command line's path, not a second one: the family is resolved by ``resolve_family``
(``auto`` included), the method by ``get_method``, the target by ``parse_target``; paths are read
by ``collect_images`` (a folder, and an ImageNet val image's label and boxes, as for
``--images``); the maps come from ``make_figure`` on a ``CamEngine`` and the grid from
``compose_grid``. The engine (with its loaded models and map cache) is kept per family,
checkpoints folder and device for the life of the kernel, so a second call costs only the maps
it has not computed yet; ``clear_models()`` lets them go.
"""
from __future__ import annotations

import dataclasses
import io
import numbers
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Union

from PIL import Image

from cam.engine.engine import CamEngine, CamResult, ModelRun
from cam.engine.figure import FigureSpec, make_figure
from cam.engine.inputs import CamImage, collect_images, image_from_bytes, with_unique_ids
from cam.engine.methods import EXACT, CamMethod, get_method
from cam.engine.targets import PREDICTED, Target, parse_target
from cam.render.export import png_bytes, save_figure
from cam.render.grid import compose_grid
from cam.render.style import DEFAULT_STYLE, RenderStyle
from safe_io.imagenet import class_label
from safe_io.images import ImageLoadError
from scaled_models.devices import usable_device
from scaled_models.family import AUTO_FAMILY, WeightFamily
from scaled_models.files import check_checkpoints, checkpoints_root
from scaled_models.ladders import DEFAULT_LADDER, Ladder
from scaled_models.zoo import LoadedModel, ZooRequest, load_requested, zoo_request

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ImageInput = Union[str, os.PathLike, Image.Image]
"""A picture file, a folder of them (or an ImageNet val folder), or a PIL image."""

NOTEBOOK_STYLE = dataclasses.replace(DEFAULT_STYLE, dpi=100)
"""The command line's style at 100 DPI (160 px panels): a five-model grid is about 1100 px
wide, the width of a notebook cell. ``compare(..., style=RenderStyle())`` draws at the CLI's
300 DPI."""


@dataclass(frozen=True, eq=False)
class CompareRow:
    """One image as one model saw it."""

    image_index: int  # position in ``CompareResult.images`` (the order given; a folder: sorted)
    image_id: str  # the name the grid shows (file stem, ILSVRC id, or the PIL image's file name)
    image_key: str  # the image's content hash: with ``model_key``, the key of ``maps``
    model_key: str  # the column: a Table 7 role (baseline, …), a ladder's key, a brought model
    model_label: str  # the column's words
    prediction: int  # top-1 ImageNet class index
    prediction_label: str  # … in words
    probability: float  # its softmax probability
    target_class: int  # the class the map explains (the prediction unless a target was given)
    target_probability: float
    ground_truth: int | None  # the label, for an ImageNet val image; else None
    correct: bool | None  # prediction == ground_truth (None without a label)
    low_confidence: bool  # top-1 probability under 10 %: the grid marks it "(low)"
    cam: CamResult = field(repr=False)  # the map (``cam.raw_map``, ``cam.upsampled()``), top-5

    def as_dict(self) -> dict:
        """The row without its map: one record for ``pandas.DataFrame(result.records())``."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "cam"}


@dataclass(frozen=True)
class UnavailableModel:
    """A selected model that did not run, and why: the grid's grey column in words."""

    key: str
    label: str
    reason: str
    make_available: str  # the command that makes its weights ("" if none is known)


@dataclass(frozen=True, eq=False)
class CompareResult:
    """What ``compare`` computed and drew. Rows come image by image, models in paper order."""

    images: tuple[CamImage, ...]  # as the engine saw them, in the order given
    rows: tuple[CompareRow, ...]  # one per (image, available model)
    maps: Mapping[tuple[str, str], CamResult]  # by (image key, model key), as CamEngine.compute
    unavailable: tuple[UnavailableModel, ...]  # selected models without weights, paper order
    family: str  # the weight family that ran
    family_reason: str  # why that family (``auto`` says what it found)
    ladder: Ladder  # which models were compared
    method: CamMethod
    target: Target
    spec: FigureSpec  # what the grid shows: models with provenance, rows of CamResults
    models: tuple[LoadedModel, ...]  # the selected models as loaded, their networks included
    style: RenderStyle
    grid: Image.Image = field(repr=False)  # the grid as the CLI renders it (compose_grid)
    figure: Figure = field(repr=False)  # ``grid`` in a matplotlib Figure, axes off

    def map_of(self, image: int | str, model: str) -> CamResult:
        """The map of one image (its index in ``images``, its id or its key) by one model."""
        picked = self._image(image)
        try:
            return self.maps[(picked.key, model)]
        except KeyError:
            ran = sorted({key for _, key in self.maps})
            raise KeyError(f"no map of {picked.image_id!r} by {model!r}; models that ran: "
                           f"{', '.join(ran) or 'none'}") from None

    def records(self) -> list[dict]:
        """``rows`` without their maps, for ``pandas.DataFrame(result.records())``."""
        return [row.as_dict() for row in self.rows]

    def save(self, out: str | os.PathLike, style: RenderStyle | None = None
             ) -> tuple[list[Path], Path]:
        """Write the grid (``.png`` or ``.pdf``) and its JSON manifest as ``python -m cam
        figure --out`` does; ``style`` redraws it (e.g. ``RenderStyle()`` for the CLI's 300 DPI)
        without running a model. Returns (files written, manifest)."""
        return save_figure(self.spec, style or self.style, out)

    def _image(self, image: int | str) -> CamImage:
        if isinstance(image, int):
            return self.images[image]
        for candidate in self.images:
            if image in (candidate.key, candidate.image_id):
                return candidate
        raise KeyError(f"no image {image!r}; images: "
                       f"{', '.join(i.image_id for i in self.images)}")

    def _repr_png_(self) -> bytes:
        """A notebook shows the result as its grid."""
        return png_bytes(self.grid, self.style.dpi)

    def __repr__(self) -> str:
        models = [m.key for m in self.spec.models]
        missing = f"; unavailable: {', '.join(u.key for u in self.unavailable)}" \
            if self.unavailable else ""
        return (f"<CompareResult: {len(self.images)} image(s) × {len(models)} model(s) "
                f"({', '.join(models)}{missing}); {self.method.key}, target "
                f"{self.target.label}, family {self.family}>")


def compare(images: ImageInput | Sequence[ImageInput], family: str | WeightFamily = AUTO_FAMILY,
            method: str | CamMethod = EXACT, *, target: str | int | Target = PREDICTED,
            models: str | Sequence[str] | None = None, style: RenderStyle | None = None,
            checkpoints: str | os.PathLike | None = None, device: str | None = None,
            progress: Callable[[ModelRun], None] | None = None,
            ladder: str | Ladder = DEFAULT_LADDER) -> CompareResult:
    """Every selected Table 7 model's class activation map of ``images``, as ``python -m cam
    figure`` computes and draws them.

    - ``images``: paths (files, or folders as ``--images`` takes them) and/or PIL images, or one
      of them. A PIL image is used as it is (no EXIF rotation), named by its file if it has one.
    - ``family``: ``"auto"`` (the paper's EfficientNets when B0's weights are at hand, else the
      offline Lite stand-ins; the ResNets for the ``resnet`` ladder), a family name
      (``"lite"``, ``"efficientnet"``, ``"resnet"``) or a family.
    - ``method``: a key of ``cam.METHODS`` (``"cam"``, the exact CAM the paper used;
      ``"gradcam"``, …) or a ``CamMethod``.
    - ``target``: ``"predicted"`` (each model's top-1), ``"gt"``, a class index, wnid or name,
      or a ``Target``.
    - ``models``: the ladder's column keys (``"baseline,compound"`` or a list; default all),
      and models you bring: ``"torchvision:resnet152.IMAGENET1K_V2"``, ``"timm:NAME"``,
      ``"torchvision:resnet50=weights.pth"``, each a column after the ladder's.
    - ``style``: how the grid is drawn (default ``NOTEBOOK_STYLE``, the CLI's at 100 DPI).
    - ``checkpoints``, ``device``: as ``--checkpoints`` and ``--device``.
    - ``ladder``: ``"table7"`` (Figure 7's five models, the default), ``"resnet"`` (Table 3's
      ResNet-50 scaled by published ResNets) or ``"compound"`` (Lite0 → Lite2, B0 → B7).

    A model without weights does not run: it is listed in ``unavailable`` (with the command that
    makes it) and drawn as a grey column. Raises ``ValueError`` (``ImageLoadError`` for a
    picture) naming the bad file or value or listing the valid choices, before any model loads:
    also for a value of the wrong type (``target=3.5``, ``style="big"``, ``models=","``) or a
    device this machine lacks.
    """
    method = _method(method)
    target = _target(target)
    style = _style(style)
    if checkpoints is not None:
        check_checkpoints(checkpoints)
    if device is not None:
        device = str(usable_device(_text("device", device)))
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be a function of a ModelRun, got {progress!r}")
    request = zoo_request(family if isinstance(family, WeightFamily)
                          else _text("family", family), ladder, _models(models), checkpoints,
                          device)
    pictures = _read_images(images)
    engine = _engine(request)
    keys = [*request.keys, *(brought.text for brought in request.brought)]
    spec = make_figure(engine, pictures, method, target, keys, progress)
    grid = compose_grid(spec, style)
    return CompareResult(
        images=tuple(pictures), rows=tuple(_rows(spec)),
        maps=MappingProxyType({(row.image.key, key): result for row in spec.rows
                               for key, result in row.results.items()}),
        models=tuple(m for m in engine.zoo.models if m.key in keys),
        unavailable=tuple(UnavailableModel(m.key, m.column.label,
                                           m.provenance.unavailable_reason or "no weights",
                                           m.provenance.make_available or "")
                          for m in spec.models if not m.available),
        family=request.family.name, family_reason=request.family_reason,
        ladder=request.ladder, method=method, target=target, spec=spec, style=style, grid=grid,
        figure=_figure(grid, style.dpi))


# --- the entry's checks: each choice resolved once, with the project's own messages ------------

def _text(name: str, value: object) -> str:
    """A choice given by name must be text (a number or a list there is a slip)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a name (text), got {value!r}")
    return value


def _method(method: str | CamMethod) -> CamMethod:
    """A ``CamMethod``, or the key of one (``get_method`` lists the keys)."""
    return method if isinstance(method, CamMethod) else get_method(_text("method", method))


def _target(target: str | int | Target) -> Target:
    """A ``Target``, a class index (any integer type, numpy's included) or text; a float or
    a bool is refused rather than rounded (``3.5`` is no class)."""
    if isinstance(target, Target):
        return target
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        return Target.of_class(int(target))
    if not isinstance(target, str):
        raise ValueError(f"target {target!r} is not 'predicted', 'gt', a class index (a whole "
                         "number 0..999), a wnid or an ImageNet class name")
    return parse_target(target)


def _models(models: str | Sequence[str] | None) -> str | None:
    """``models`` as ``--models`` takes it (comma-separated), or ``ValueError``."""
    if models is None or isinstance(models, str):
        return models
    if not (isinstance(models, Sequence) and all(isinstance(m, str) for m in models)):
        raise ValueError(f"models must be column keys or brought models, as "
                         f"'baseline,compound' or a list of them, got {models!r}")
    return ",".join(models)


def _style(style: RenderStyle | None) -> RenderStyle:
    """The drawing style, checked before any map is computed (``RenderStyle`` checks its
    fields when it is made)."""
    if style is None:
        return NOTEBOOK_STYLE
    if not isinstance(style, RenderStyle):
        raise ValueError(f"style must be a cam.RenderStyle, e.g. RenderStyle(dpi=300) or "
                         f"RenderStyle(colormap='viridis'), got {style!r}")
    return style


def _read_images(images: ImageInput | Sequence[ImageInput]) -> list[CamImage]:
    """Every picture decoded (paths as ``--images`` reads them), or one ``ImageLoadError``
    naming each file that could not be read."""
    given = [images] if isinstance(images, (str, os.PathLike, Image.Image)) else list(images)
    if not given:
        raise ValueError("no images given: pass paths and/or PIL images")
    pictures: list[CamImage] = []
    failures: list[str] = []
    for position, item in enumerate(given, start=1):
        if isinstance(item, Image.Image):
            try:
                pictures.append(_from_pil(item, position))
            except ImageLoadError as exc:
                failures.append(str(exc))
        elif isinstance(item, (str, os.PathLike)):
            report = collect_images([item])
            pictures += report.images
            failures += [reason if reason.startswith(name) else f"{name}: {reason}"
                         for name, reason in report.failures]
        else:
            failures.append(f"image {position}: {type(item).__name__!r} is neither a path nor "
                            "a PIL image")
    if failures:
        raise ImageLoadError(failures[0] if len(failures) == 1 else
                             f"{len(failures)} images could not be read: " + "; ".join(failures))
    return with_unique_ids(pictures)


def _from_pil(picture: Image.Image, position: int) -> CamImage:
    """A PIL image through the same decoder as a file (RGB, alpha over white, size limits),
    losslessly as PNG; its content hash is the cache key."""
    name = Path(getattr(picture, "filename", "") or f"image {position}.png").name
    buffer = io.BytesIO()
    try:
        # PNG stores these modes as they are (16-bit included), so the decoder scales them as it
        # scales a 16-bit file; convert() would clip 16-bit values at 255.
        stored = ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16", "I;16B")
        rgb_like = picture if picture.mode in stored else \
            picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
        rgb_like.save(buffer, format="PNG", compress_level=1)
    except (OSError, ValueError) as exc:
        raise ImageLoadError(f"{name} (PIL image {position}): cannot be used ({exc})") from None
    return image_from_bytes(buffer.getvalue(), name, image_id=Path(name).stem)


# --- models kept between calls -----------------------------------------------------------------

_ENGINES: dict[tuple, CamEngine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(request: ZooRequest) -> CamEngine:
    """One engine per (family, ladder, brought models, checkpoints folder, device), loaded on
    first use (every column of the ladder, so a later call with other ``models`` loads nothing)
    and kept, maps cached, until ``clear_models()``."""
    key = (request.family.name, request.ladder.name, request.brought,
           str(checkpoints_root(request.checkpoints).resolve()), str(request.device))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            every = dataclasses.replace(request, keys=tuple(request.family.bindings(
                request.ladder)))
            _ENGINES[key] = CamEngine(load_requested(every))
        return _ENGINES[key]


def clear_models() -> None:
    """Let the models ``compare`` keeps loaded go (their memory, and their cached maps)."""
    with _ENGINES_LOCK:
        _ENGINES.clear()


# --- the result's parts ------------------------------------------------------------------------

def _rows(spec: FigureSpec) -> list[CompareRow]:
    rows = []
    for index, row in enumerate(spec.rows):
        gt = row.image.gt_class
        for model in spec.models:
            result = row.results.get(model.key)
            if result is None:
                continue
            rows.append(CompareRow(
                image_index=index, image_id=row.image.image_id, image_key=row.image.key,
                model_key=model.key, model_label=model.column.label,
                prediction=result.pred_class, prediction_label=class_label(result.pred_class),
                probability=result.pred_prob, target_class=result.target_class,
                target_probability=result.target_prob, ground_truth=gt,
                correct=None if gt is None else result.pred_class == gt,
                low_confidence=result.low_confidence, cam=result))
    return rows


def _figure(grid: Image.Image, dpi: int) -> Figure:
    """The rendered grid in a matplotlib Figure of the grid's own size at ``dpi``, axes off, so
    that a notebook shows it at the size it was drawn for and ``savefig`` gives its pixels back.
    A plain ``Figure`` (not pyplot's): nothing global holds it, so a loop leaks no figures."""
    import numpy as np
    from matplotlib.figure import Figure

    width, height = grid.size
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.imshow(np.asarray(grid), interpolation="none")
    axes.set_axis_off()
    return figure
