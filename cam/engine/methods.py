"""The one registry of CAM methods, and how each runs on a ``CamNet``.

``cam`` is the exact class activation map of Zhou et al. (CVPR 2016), the method Figure 7 uses:
for a GAP+FC network the map of class c is Σ_k w_k^c A_k (A the last feature map, w the
classifier weights), one forward pass and no gradients. The other methods come from the
pytorch-grad-cam library and run on the same feature map (``net.features``). They are used
through the library's public template only: each call builds the library's own class, extended
by a mixin that overrides the one documented hook ``get_cam_image`` to keep the map at feature
resolution before the library's min–max scaling and resize. So a method the library adds or
changes works, or fails loudly, without scalecam re-driving its internals.

Adding a method is one ``CamMethod`` entry below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from scaled_models.architectures import CamNet, LibraryNet

if TYPE_CHECKING:
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

SLOW_NOTE = "slow: one forward pass per batch of feature channels"
# Score-CAM and Ablation-CAM run the network once per feature channel (1280 for Lite0), in
# batches of masked copies of the image: a batch holds at most this many input pixels (16
# images at 224 px, 4 at 448 px), so their memory does not grow with the model's resolution.
# The library's own batch of 32, and its Score-CAM masking every channel at once, took 9 GB for
# one 448 px image.
CHANNEL_BATCH_PIXELS = 16 * 224 * 224


def channel_batch(resolution: int) -> int:
    """Masked copies per forward pass for an input of ``resolution`` px."""
    return max(1, CHANNEL_BATCH_PIXELS // (resolution * resolution))


@dataclass(frozen=True)
class CamMethod:
    """One CAM method: its CLI key, how people call it, and where it comes from."""

    key: str
    label: str
    reference: str
    library_class: str | None = None  # class name in pytorch_grad_cam; None = exact CAM
    slow: bool = False

    @property
    def menu_label(self) -> str:
        """Label plus a warning for the methods that take minutes on a CPU."""
        return f"{self.label} ({SLOW_NOTE})" if self.slow else self.label


# The paper's method, and every caller's default. Methods travel as these objects, resolved
# from a key once, where a person names one (the command line's ``get_method``, the app's menu).
EXACT = CamMethod("cam", "CAM (exact; the paper's method)",
                  "Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016")
_REGISTRY: tuple[CamMethod, ...] = (
    EXACT,
    CamMethod("gradcam", "Grad-CAM", "Selvaraju et al., ICCV 2017", "GradCAM"),
    CamMethod("gradcam++", "Grad-CAM++", "Chattopadhay et al., WACV 2018", "GradCAMPlusPlus"),
    CamMethod("xgradcam", "XGrad-CAM", "Fu et al., BMVC 2020", "XGradCAM"),
    CamMethod("hirescam", "HiRes-CAM", "Draelos & Carin, arXiv:2011.08891", "HiResCAM"),
    CamMethod("layercam", "Layer-CAM", "Jiang et al., IEEE TIP 2021", "LayerCAM"),
    CamMethod("eigencam", "Eigen-CAM", "Muhammad & Yeasin, IJCNN 2020", "EigenCAM"),
    CamMethod("scorecam", "Score-CAM", "Wang et al., CVPRW 2020", "ScoreCAM", slow=True),
    CamMethod("ablationcam", "Ablation-CAM", "Desai & Ramaswamy, WACV 2020", "AblationCAM",
              slow=True),
)
METHODS: dict[str, CamMethod] = {m.key: m for m in _REGISTRY}


def get_method(key: str) -> CamMethod:
    """The registered method ``key``; the error lists the valid keys."""
    try:
        return METHODS[key]
    except KeyError:
        raise ValueError(f"unknown CAM method {key!r}; choose from {', '.join(METHODS)}") from None


def forward_passes_per_image(method: CamMethod, net: CamNet | LibraryNet) -> int:
    """Images the network runs per explained image: one, or for a slow method one masked or
    ablated copy per channel of the feature map it explains (``net.fc`` reads that map; a
    ``LibraryNet``'s is counted on a small probe)."""
    if not method.slow:
        return 1
    if isinstance(net, CamNet):
        return net.fc.in_features
    parameter = next(net.parameters())
    with torch.inference_mode():
        probe = torch.zeros(1, 3, 64, 64, dtype=parameter.dtype, device=parameter.device)
        return _feature_channels(net, probe)


def _feature_channels(net: LibraryNet, probe: torch.Tensor) -> int:
    """Channels of the feature map the library's methods explain, read by a forward hook."""
    seen: list[int] = []
    handle = net.features.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[1]))
    try:
        net(probe)
    finally:
        handle.remove()
    return seen[-1]


def exact_cam(net: CamNet, batch: torch.Tensor, classes: list[int | None],
              dtype: torch.dtype | None = None) -> tuple[np.ndarray, torch.Tensor, list[int]]:
    """Forward only: (maps, probabilities, explained classes). Each map is Σ_k w_k^c A_k for the
    image's class (``None`` = its top-1). With ``dtype`` the forward runs under autocast; the
    weighted sum is always fp32."""
    with torch.inference_mode():
        with torch.autocast(batch.device.type, dtype=dtype, enabled=dtype is not None):
            logits, features = net.forward_with_features(batch)
        probs = logits.float().softmax(dim=1).cpu()
        chosen = choose_classes(probs, classes)
        weights = net.fc.weight[torch.tensor(chosen, device=features.device)]
        maps = torch.einsum("bchw,bc->bhw", features.float(), weights.float())
    return maps.cpu().numpy().astype(np.float32), probs, chosen


def library_cam(net: CamNet, batch: torch.Tensor, classes: list[int | None], method: CamMethod
                ) -> tuple[np.ndarray, torch.Tensor, list[int]]:
    """A pytorch-grad-cam method on ``net.features``: (maps at feature resolution after the
    library's ReLU, probabilities, explained classes). The classes are fixed from one plain
    forward pass first, so perturbation methods (Score-CAM, Ablation-CAM) score the class the
    model predicted for the real image, not whatever each perturbed copy predicts. Gradients
    flow from the input, so the shared model's parameters are never switched to
    ``requires_grad``; the library's hooks are removed on exit, even after an error."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with torch.inference_mode():
        probs = net(batch).float().softmax(dim=1).cpu()
    chosen = choose_classes(probs, classes)
    base = getattr(pytorch_grad_cam, method.library_class)
    mixins = (_KeepsFeatureResolutionMaps,) + ((_ChannelsInBatches,) if method.key == "scorecam"
                                               else ())
    cam_class = type(f"FeatureResolution{base.__name__}", (*mixins, base), {})
    options = {}
    if method.key == "ablationcam":  # the library's default layer is one shared instance
        from pytorch_grad_cam.ablation_layer import AblationLayer
        options["ablation_layer"] = AblationLayer()
    with cam_class(model=net, target_layers=[net.features], **options) as cam:
        cam.batch_size = channel_batch(batch.shape[-1])  # the library reads this attribute
        # A method that reads no gradient (Eigen-, Score-, Ablation-CAM) runs without autograd,
        # so no graph of activations is kept for a backward pass that never comes.
        with torch.set_grad_enabled(cam.uses_gradients):
            cam(input_tensor=batch.detach().clone().requires_grad_(cam.uses_gradients),
                targets=[ClassifierOutputTarget(c) for c in chosen])
        maps = cam.feature_resolution_maps
    return maps, probs, chosen


def choose_classes(probs: torch.Tensor, classes: list[int | None]) -> list[int]:
    """The requested class per image, or its top-1 where none is requested."""
    top1 = probs.argmax(dim=1).tolist()
    return [wanted if wanted is not None else best for wanted, best in zip(classes, top1)]


class _KeepsFeatureResolutionMaps:
    """Mixin for a pytorch-grad-cam class: remember each image's map as the method computed it
    (after the library's own ReLU), before the library min–max scales and resizes it. The
    scale matters: scalecam shows raw values and can normalise a row of models on one scale."""

    feature_resolution_maps: np.ndarray

    # the template's documented per-method hook
    def get_cam_image(self, *args, **kwargs) -> np.ndarray:
        cam = super().get_cam_image(*args, **kwargs)
        self.feature_resolution_maps = np.maximum(cam, 0).astype(np.float32)
        return cam


class _ChannelsInBatches:
    """Mixin for the library's ScoreCAM: its ``get_cam_weights`` hook, computed the same way
    (Wang et al. 2020: each channel's activation, upsampled and min-max scaled, masks the
    image; the weight is the softmax over channels of the target's score on each masked copy)
    but one batch of channels at a time. The library builds every masked copy first (1280
    copies of a 448 px image are 3 GB) and then forwards them in batches.

    The library's forward hooks on the target layer append every forward's activations to a
    list until the call ends (1280 channels at 14×14 for each masked copy: 1.3 GB for one 448 px
    image). They have been read by the time this hook runs, so it releases them first, through
    the library's public ``activations_and_grads.release()``; the template's exit releases
    again, which does nothing."""

    batch_size: int
    activations_and_grads: ActivationsAndGradients

    def get_cam_weights(self, input_tensor: torch.Tensor, target_layer, targets,
                        activations: np.ndarray, grads) -> np.ndarray:
        self.activations_and_grads.release()
        with torch.no_grad():
            upsample = torch.nn.UpsamplingBilinear2d(size=input_tensor.shape[-2:])
            acts = torch.from_numpy(activations).to(self.device)
            scores = torch.empty(acts.shape[:2])
            for i, (target, image) in enumerate(zip(targets, input_tensor)):
                for start in range(0, acts.shape[1], self.batch_size):
                    masks = upsample(acts[i:i + 1, start:start + self.batch_size])[0]
                    flat = masks.view(masks.shape[0], -1)
                    low, high = flat.min(dim=-1)[0], flat.max(dim=-1)[0]
                    masks = (masks - low[:, None, None]) / (high - low + 1e-8)[:, None, None]
                    outputs = self.model(image[None] * masks[:, None])
                    scores[i, start:start + len(masks)] = torch.tensor(
                        [target(o).cpu().item() for o in outputs])
            return torch.softmax(scores, dim=-1).numpy()
