"""Masks and canvases for inpainting and outpainting: loading, feathering, compositing, crop-and-stitch.

Convention everywhere: a mask is an (H, W) float32 array in [0, 1] where 1 (white) means regenerate.
Compositing only ever changes pixels where the mask is non-zero: the soft blend band lies inside the
mask, so every pixel outside it is returned bit-identical.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from mediagen.errors import RequestError
from mediagen.media import load_image
from mediagen.schema import Extend

EMPTY_MASK = "the mask is empty: paint white where the image should change"
Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive, like PIL's crop box


# -- loading -------------------------------------------------------------------------------------
def _array_values(arr: np.ndarray) -> np.ndarray:
    """Scale a mask array of any supported dtype to float32 [0, 1]."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise RequestError("the mask contains NaN or infinite values")
        if out.min() < -1e-3 or out.max() > 1.0 + 1e-3:
            raise RequestError(
                f"a float mask must lie in [0, 1]; got values in [{out.min():g}, {out.max():g}]: "
                "divide 0-255 values by 255"
            )
        return np.clip(out, 0.0, 1.0)
    raise RequestError(f"unsupported mask dtype {arr.dtype}: give uint8 (0-255), uint16, bool or float in [0, 1]")


def _mask_from_array(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return _array_values(arr)
    if arr.ndim == 3 and arr.shape[2] in (2, 3, 4):
        vals = _array_values(arr)
        colour = vals[:, :, :-1] if arr.shape[2] in (2, 4) else vals
        m = colour.max(axis=2)  # the brightest channel: any paint on black counts
        if arr.shape[2] in (2, 4):
            alpha = vals[:, :, -1]
            if alpha.min() < 1.0:  # painted strokes on a transparent layer: transparent = keep
                m = m * alpha
        return m.astype(np.float32)
    raise RequestError(
        f"a mask must be a 2-D array (H, W) or an H x W x 3/4 colour image; got shape {tuple(arr.shape)}"
    )


def _mask_values(src: Any) -> np.ndarray:
    """(H, W) float32 in [0, 1] from a path, data: URI, PIL image or array, at its own size."""
    if isinstance(src, np.ndarray) or type(src).__name__ == "Tensor":
        return _mask_from_array(np.asarray(src))
    im = load_image(src, mode=None)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.float32)
        return np.clip(arr / (65535.0 if arr.max() > 255 else 255.0), 0.0, 1.0)
    if im.mode == "F":
        return _mask_from_array(np.asarray(im))
    if im.mode in ("1", "L"):
        return _mask_from_array(np.asarray(im.convert("L")))
    if im.mode in ("LA", "RGBA", "PA", "La", "RGBa"):
        return _mask_from_array(np.asarray(im.convert("RGBA")))
    return _mask_from_array(np.asarray(im.convert("RGB")))


def _resize_mask(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = np.asarray(Image.fromarray(m.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def prepare_mask(src: Any, size: tuple[int, int]) -> np.ndarray:
    """Load a mask (white = regenerate) as (H, W) float32 in [0, 1] for an image of `size` = (width, height)."""
    width, height = int(size[0]), int(size[1])
    m = _mask_values(src)
    if m.shape != (height, width):
        mh, mw = m.shape
        note = "" if abs(mw / mh - width / height) < 0.01 else " (the aspect ratios differ: the mask is stretched)"
        warnings.warn(
            f"the mask is {mw}x{mh} but the image is {width}x{height}: resizing the mask to {width}x{height}{note}",
            stacklevel=2,
        )
        m = _resize_mask(m, (width, height))
    if m.max() < 0.5 / 255.0:
        raise RequestError(EMPTY_MASK)
    return m


def mask_from_alpha(image_rgba: Any) -> np.ndarray:
    """OpenAI-edit convention: transparent pixels (alpha 0) are regenerated; mask = 1 - alpha."""
    if isinstance(image_rgba, np.ndarray) or type(image_rgba).__name__ == "Tensor":
        arr = np.asarray(image_rgba)
        if arr.ndim != 3 or arr.shape[2] not in (2, 4):
            raise RequestError(
                f"an image whose transparency marks the edit needs an alpha channel (H x W x 4); got shape {arr.shape}"
            )
        alpha = _array_values(arr[:, :, -1])
    else:
        im = load_image(image_rgba, mode=None)
        if im.mode not in ("RGBA", "LA", "PA", "La", "RGBa") and "transparency" not in im.info:
            raise RequestError(
                f"the image ({im.mode}) has no alpha channel: erase (make transparent) where it should change, "
                "or pass a separate mask"
            )
        alpha = np.asarray(im.convert("RGBA"))[:, :, 3].astype(np.float32) / 255.0
    m = (1.0 - alpha).astype(np.float32)
    if m.max() < 0.5 / 255.0:
        raise RequestError("the image has no transparent pixels: erase where it should change, or pass a mask")
    return m


# -- feathering ----------------------------------------------------------------------------------
def _inside_distance_sq(inside: np.ndarray, limit: int) -> np.ndarray:
    """Squared distance (capped at limit**2) from inside pixels to the nearest outside one (Meijster et al. 2000)."""
    # Separable: exact column distances, then a row pass over the capped window. Pixels beyond the image
    # border count as inside, so a mask touching the border is not feathered along it.
    h, w = inside.shape
    big = h + w + limit + 1
    rows = np.arange(h, dtype=np.int64)[:, None]
    last_out_above = np.maximum.accumulate(np.where(~inside, rows, -big), axis=0)  # (H, W)
    next_out_below = np.minimum.accumulate(np.where(~inside, rows, h + big)[::-1], axis=0)[::-1]
    g = np.minimum(np.minimum(rows - last_out_above, next_out_below - rows), limit).astype(np.int64)  # (H, W)
    g2 = g * g
    d2 = g2.copy()
    for k in range(1, min(limit, w - 1) + 1):
        k2 = k * k
        np.minimum(d2[:, :-k], g2[:, k:] + k2, out=d2[:, :-k])
        np.minimum(d2[:, k:], g2[:, :-k] + k2, out=d2[:, k:])
    return np.minimum(d2, limit * limit)


def _ramp_table(blur_px: int, limit: int) -> np.ndarray:
    """Blend weight by squared distance: a Gaussian edge profile rescaled to run from 0 at the edge to 1."""
    width = blur_px + 1.0
    c, sigma = width / 2.0, width / 4.0
    lo, hi = 0.5 * (1 + math.erf(-c / (sigma * math.sqrt(2)))), 0.5 * (1 + math.erf(c / (sigma * math.sqrt(2))))
    table = np.empty(limit * limit + 1, np.float32)
    for k in range(table.size):
        d = math.sqrt(k)
        if d >= width:
            table[k] = 1.0
        else:
            phi = 0.5 * (1 + math.erf((d - c) / (sigma * math.sqrt(2))))
            table[k] = min(max((phi - lo) / (hi - lo), 0.0), 1.0)
    table[0] = 0.0
    return table


def soften(mask: np.ndarray, blur_px: int) -> np.ndarray:
    """Feathered blend weights: the mask with a Gaussian-profile ramp `blur_px` wide inside its edge; 0 outside."""
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim != 2:
        raise RequestError(f"a mask must be 2-D (H, W); got shape {m.shape}")
    if blur_px < 0:
        raise RequestError(f"mask blur must be >= 0 pixels, got {blur_px}")
    if blur_px == 0:
        return m.copy()
    limit = int(blur_px) + 1
    d2 = _inside_distance_sq(m > 0, limit)
    return (m * _ramp_table(int(blur_px), limit)[d2]).astype(np.float32)


# -- compositing ---------------------------------------------------------------------------------
def _rgb_array(image: Any) -> np.ndarray:
    return np.asarray(load_image(image))  # (H, W, 3) uint8


def _blend(original: np.ndarray, generated: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """original + w * (generated - original), exact where w is 0 or 1."""
    o = original.astype(np.float32)
    out = o + weight[:, :, None] * (generated.astype(np.float32) - o)  # (H, W, 3)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check_mask_size(mask: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != (size[1], size[0]):
        raise RequestError(f"the mask is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]} but the {what} is "
                           f"{size[0]}x{size[1]}: prepare it with prepare_mask(mask, image.size)")
    return m


def _match_size(generated: Any, size: tuple[int, int]) -> np.ndarray:
    gen = load_image(generated)
    if gen.size != size:
        gen = gen.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(gen)


BLENDS = ("gradient", "feather")


def _meet(original: np.ndarray, generated: np.ndarray, mask: np.ndarray, blur_px: int, blend: str) -> np.ndarray:
    """Generated pixels joined to the original inside the mask: shifted by a smooth field so that its colours
    continue across the edge ("gradient", `seams.seamless`; no band needed, and a mask's own soft values
    still mix in that share of the shifted pixels) or mixed with them over a soft band `blur_px` wide
    ("feather")."""
    if blend == "gradient":
        from mediagen.engine.seams import seamless

        return _blend(original, seamless(original, generated, mask), np.asarray(mask, np.float32))
    if blend != "feather":
        raise RequestError(f"unknown mask blend {blend!r}; use one of {', '.join(BLENDS)}")
    return _blend(original, generated, soften(mask, blur_px))


def composite(original: Any, generated: Any, mask: np.ndarray, blur_px: int, blend: str = "feather") -> Image.Image:
    """Generated pixels inside the mask, original ones outside (bit-exact), joined at the mask edge (see `_meet`
    for the two ways; the feather's band is `blur_px` wide)."""
    orig = load_image(original)
    m = _check_mask_size(mask, orig.size, "image")
    gen = _match_size(generated, orig.size)
    return Image.fromarray(_meet(np.asarray(orig), gen, m, blur_px, blend))


# -- outpainting ---------------------------------------------------------------------------------
def _split_extra(extra: int, lo: int, hi: int) -> tuple[int, int]:
    """Give rounding padding to the extended side(s) of an axis; to the far side when neither is."""
    if lo and hi:
        return lo + extra // 2, hi + extra - extra // 2
    if lo:
        return lo + extra, hi
    return lo, hi + extra


def outpaint_canvas(
    image: Any, extend: Extend, *, multiple: int = 8, seed: int = 0, noise_std: float = 6.0
) -> tuple[Image.Image, np.ndarray, Box]:
    """A canvas with the image placed inside, the new area pre-filled, its mask (1 = new) and the image's box.

    The fill is the image's edges blurred outwards plus Gaussian noise (`noise_std` levels) for the model to
    start from; with noise_std=0 it is the smooth extension the final composite fades from at the seam.
    """
    im = load_image(image)
    w, h = im.size
    if not extend.any:
        raise RequestError("--extend adds nothing: give pixels for at least one side, e.g. 128,0,128,0")
    if multiple < 1:
        raise RequestError(f"multiple must be >= 1, got {multiple}")
    for side, amount, dim, name in (("left", extend.left, w, "width"), ("right", extend.right, w, "width"),
                                    ("top", extend.top, h, "height"), ("bottom", extend.bottom, h, "height")):
        if amount > 2 * dim:
            raise RequestError(
                f"--extend {side}={amount} is more than twice the image {name} ({dim} px, so at most {2 * dim}): "
                "extend in several passes"
            )
    left, right = _split_extra(-(w + extend.left + extend.right) % multiple, extend.left, extend.right)
    top, bottom = _split_extra(-(h + extend.top + extend.bottom) % multiple, extend.top, extend.bottom)
    cw, ch = w + left + right, h + top + bottom
    arr = np.asarray(im)  # (h, w, 3)
    pads = ((top, bottom), (left, right), (0, 0))
    base = 0.5 * np.pad(arr, pads, mode="symmetric").astype(np.float32) + 0.5 * np.pad(arr, pads, mode="edge")
    base_im = Image.fromarray(np.clip(np.rint(base), 0, 255).astype(np.uint8))
    reach = max(left, right, top, bottom)
    near = np.asarray(base_im.filter(ImageFilter.GaussianBlur(2)), np.float32)
    far = np.asarray(base_im.filter(ImageFilter.GaussianBlur(max(4.0, reach / 4))), np.float32)
    ys = np.arange(ch, dtype=np.float32)[:, None]
    xs = np.arange(cw, dtype=np.float32)[None, :]
    dx = np.maximum(np.maximum(left - xs, xs - (left + w - 1)), 0)  # (1, cw)
    dy = np.maximum(np.maximum(top - ys, ys - (top + h - 1)), 0)  # (ch, 1)
    t = np.clip(np.sqrt(dx * dx + dy * dy) / max(reach / 2, 1), 0, 1)[:, :, None]  # (ch, cw, 1)
    noise = np.random.default_rng(seed).normal(0.0, noise_std, size=(ch, cw, 1)).astype(np.float32)
    fill = np.clip(np.rint((1 - t) * near + t * far + noise), 0, 255).astype(np.uint8)
    fill[top:top + h, left:left + w] = arr
    mask = np.ones((ch, cw), np.float32)
    mask[top:top + h, left:left + w] = 0.0
    return Image.fromarray(fill), mask, (left, top, left + w, top + h)


# -- crop and stitch -----------------------------------------------------------------------------
def _ceil_to(v: int, multiple: int) -> int:
    return -(-v // multiple) * multiple


def mask_crop_box(
    mask: np.ndarray, padding: int, multiple: int = 8, min_size: int = 0, *, aspect: float | None = None
) -> Box:
    """Box around the mask + padding, >= min_size, sides rounded up to `multiple`, at `aspect`, inside the image."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise RequestError(f"a mask must be 2-D (H, W); got shape {m.shape}")
    if padding < 0 or multiple < 1 or min_size < 0 or (aspect is not None and aspect <= 0):
        raise RequestError("padding and min_size must be >= 0, multiple >= 1 and aspect > 0")
    ys, xs = np.nonzero(m > 0)
    if xs.size == 0:
        raise RequestError(EMPTY_MASK)
    height, width = m.shape
    bx0, bx1, by0, by1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    bw, bh = bx1 - bx0, by1 - by0
    cw, ch = max(bw + 2 * padding, min_size), max(bh + 2 * padding, min_size)
    if aspect is not None:
        if cw / ch < aspect:
            cw = math.ceil(ch * aspect)
        else:
            ch = math.ceil(cw / aspect)
    cw, ch = min(_ceil_to(cw, multiple), width), min(_ceil_to(ch, multiple), height)
    x0 = min(max(bx0 - (cw - bw) // 2, 0), width - cw)
    y0 = min(max(by0 - (ch - bh) // 2, 0), height - ch)
    return x0, y0, x0 + cw, y0 + ch


def crop(item: Any, box: Box) -> Any:
    """Cut a box out of a PIL image or an (H, W[, C]) array."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if isinstance(item, Image.Image):
        return item.crop((x0, y0, x1, y1))
    arr = np.asarray(item)
    if arr.ndim < 2:
        raise RequestError(f"cannot crop an array of shape {arr.shape}: give an image or an (H, W) mask")
    return arr[y0:y1, x0:x1].copy()


def stitch(original: Any, generated_crop: Any, box: Box, mask: np.ndarray, blur_px: int,
           blend: str = "feather") -> Image.Image:
    """Paste a crop generated at any resolution back into the original through the mask (outside exact)."""
    orig = load_image(original)
    m = _check_mask_size(mask, orig.size, "image")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= orig.size[0] and 0 <= y0 < y1 <= orig.size[1]):
        raise RequestError(f"the box {box} does not lie inside the {orig.size[0]}x{orig.size[1]} image")
    outside = m.copy()
    outside[y0:y1, x0:x1] = 0
    if outside.max() > 0:
        raise RequestError("the mask reaches outside the box: compute the box with mask_crop_box(mask, ...)")
    # weights from the mask with enough context around the box that the feathering matches the full image
    ctx = int(blur_px) + 2
    cx0, cy0 = max(x0 - ctx, 0), max(y0 - ctx, 0)
    cx1, cy1 = min(x1 + ctx, orig.size[0]), min(y1 + ctx, orig.size[1])
    # the context ring also holds the original pixels a gradient blend meets at a mask touching the box
    context = np.asarray(orig.crop((cx0, cy0, cx1, cy1)))
    gen = context.copy()
    gen[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = _match_size(generated_crop, (x1 - x0, y1 - y0))
    region = _meet(context, gen, m[cy0:cy1, cx0:cx1], blur_px, blend)
    out = orig.copy()
    out.paste(Image.fromarray(region), (cx0, cy0))
    return out
