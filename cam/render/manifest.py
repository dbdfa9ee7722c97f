"""The JSON manifest beside every exported grid: everything needed to reproduce the figure
(models and their weights, method, target, style, images) and what each panel showed."""
from __future__ import annotations

from cam.engine.figure import FigureRow, FigureSpec
from cam.engine.geometry import image_region
from cam.render.style import RenderStyle
from safe_io.imagenet import class_label


def manifest(spec: FigureSpec, style: RenderStyle) -> dict:
    """Everything needed to reproduce the figure: models and weights, method, targets, images."""
    return {
        "scalecam_figure": 1,
        "family": spec.family,
        "ladder": spec.ladder.name,
        "method": spec.method.key,
        "method_label": spec.method.label,
        "method_reference": spec.method.reference,
        "target": {"mode": spec.target.mode.value, "class_index": spec.target.class_index,
                   "label": spec.target.label},
        "style": {"colormap": style.colormap, "alpha": style.alpha,
                  "normalisation": style.normalisation, "show_boxes": style.show_boxes,
                  "dpi": style.dpi, "panel_px": style.panel_px},
        "models": [m.summary() for m in spec.models],
        "images": [_image_record(row, spec) for row in spec.rows],
    }


def _image_record(row: FigureRow, spec: FigureSpec) -> dict:
    image = row.image
    record = {"image_id": image.image_id, "sha256": image.key, "source": image.source,
              "size": list(image.size), "gt_class": image.gt_class,
              "gt_label": class_label(image.gt_class) if image.gt_class is not None else None,
              "boxes": [[b.x1, b.y1, b.x2, b.y2] for b in image.boxes],
              "region": list(image_region(row.image, spec.models)), "panels": {}}
    for model in spec.models:
        result = row.results.get(model.key)
        if result is None:
            record["panels"][model.key] = {
                "available": False,
                "reason": spec.not_run.get(model.key) or model.provenance.unavailable_reason}
            continue
        record["panels"][model.key] = {
            "available": True, "target_class": result.target_class,
            "target_label": class_label(result.target_class),
            "target_prob": round(result.target_prob, 6),
            "top5": [[c, class_label(c), round(p, 6)] for c, p in result.top5],
            "crop_box": [round(v, 3) for v in result.crop_box],
            "map_shape": list(result.raw_map.shape), "notes": list(result.notes)}
    return record
