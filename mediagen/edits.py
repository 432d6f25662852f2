"""Edit modes as conditioning: outpainting and only-masked inpainting become plain inpainting at a size the
model takes, and a finisher puts each output back so every pixel outside the mask is kept exactly.

Families therefore implement one thing, "inpaint `job.image` where `job.mask` is 1"; the canvas, crop,
resize and final composite live here once (as A1111's "only masked" and InvokeAI's canvas do).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
from PIL import Image

from mediagen.capabilities import Capabilities
from mediagen.engine.masks import composite, crop, mask_crop_box, outpaint_canvas, stitch
from mediagen.model import Job, Output
from mediagen.schema import Mode

Finisher = Callable[[list[Output]], list[Output]]
EDIT_MODES = (Mode.I2I, Mode.INPAINT, Mode.OUTPAINT)


def _round_to(v: float, multiple: int) -> int:
    return max(multiple, int(round(v / multiple)) * multiple)


def working_size(size: tuple[int, int], caps: Capabilities, *, target_area: int | None = None) -> tuple[int, int]:
    """A size the model takes, close to `size` in aspect: scaled to `target_area` when given, else only as
    much as the model's min/max size demands, and rounded to its size multiple."""
    w, h = size
    scale = 1.0
    if target_area:
        scale = (target_area / (w * h)) ** 0.5
    longest, shortest = max(w, h) * scale, min(w, h) * scale
    if longest > caps.max_size:
        scale *= caps.max_size / longest
    elif shortest < caps.min_size:
        scale *= caps.min_size / shortest
    m = caps.size_multiple
    fit = lambda v: min(max(_round_to(v * scale, m), caps.min_size), caps.max_size)  # noqa: E731
    return fit(w), fit(h)


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an (H, W) float mask to size (W, H)."""
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    im = Image.fromarray(mask.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(im, np.float32), 0.0, 1.0)


def plan_edit(job: Job, caps: Capabilities) -> tuple[Job, Finisher]:
    """The job the family runs (i2i, or inpaint on a canvas or crop) and the finisher for its outputs."""
    if job.mode not in EDIT_MODES:
        return job, lambda outs: outs
    req = job.request
    original, mask = job.image, job.mask  # PIL (W, H); (H, W) float32 or None
    blend_base = None
    if job.mode == Mode.OUTPAINT:
        canvas, new_mask, (x0, y0, x1, y1) = outpaint_canvas(original, req.extend, multiple=caps.size_multiple,
                                                             seed=req.seed or 0)
        if mask is not None:  # a mask on the original also regenerates that part
            new_mask[y0:y1, x0:x1] = np.maximum(new_mask[y0:y1, x0:x1], mask)
        # the composite fades from the noise-free extension of the image's edges, not from the noisy start
        blend_base, _, _ = outpaint_canvas(original, req.extend, multiple=caps.size_multiple, noise_std=0.0)
        original, mask = canvas, new_mask
    box = None
    work_image, work_mask = original, mask
    target_area = None
    if mask is not None and req.inpaint_only_masked:
        box = mask_crop_box(mask, req.inpaint_padding, multiple=caps.size_multiple)
        work_image, work_mask = crop(original, box), crop(mask, box)
        target_area = caps.default_width * caps.default_height
    size = working_size(work_image.size, caps, target_area=target_area)
    if size != work_image.size:
        work_image = work_image.resize(size, Image.Resampling.LANCZOS)
        work_mask = None if work_mask is None else _resize_mask(work_mask, size)
    work = replace(job, mode=Mode.I2I if mask is None else Mode.INPAINT, image=work_image, mask=work_mask)
    base = blend_base if job.mode == Mode.OUTPAINT else original

    def finish(outputs: list[Output]) -> list[Output]:
        done = []
        for out in outputs:
            gen = out.image
            if mask is None:
                image = gen if gen.size == original.size else gen.resize(original.size, Image.Resampling.LANCZOS)
            elif box is not None:
                image = stitch(base, gen, box, mask, req.mask_blur, req.mask_blend)
            else:
                image = composite(base, gen, mask, req.mask_blur, req.mask_blend)
            done.append(replace(out, image=image))
        return done

    return work, finish
