"""Gradient-domain seams: generated pixels moved so that they meet the original without a step.

A decoder never gives back the exact colours of the pixels it was shown, so a generated region pasted into
the original sits a few levels off it, and a colour feather turns that offset into a band of steps beside the edge.
Here the region is solved for instead (Poisson image editing, Perez et al. 2003): it keeps the generated
image's gradients inside the mask (none across its edge) while its border takes the original's values, so
the colours continue across the edge and every generated detail stays, shifted by a smooth field. Where the
two images disagree at the edge by more than a colour offset (a generated object cut by the mask), the
shift is limited to `LIMIT` levels there, so a wrong colour does not bleed in.

Convention as in `masks`: `region` (H, W) bool is where the mask is non-zero; pixels outside it are fixed to
the original and never change. The solve is conjugate gradients on the 4-neighbour Laplacian; large images
solve a half-size problem first and then only a band along the mask edge at full size (cascadic multigrid,
Bornemann and Deuflhard 1996).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DIRECT_SIDE = 96  # images at most this big are solved in one piece
BAND_PX = 12  # full-size unknowns within this many pixels of the mask edge
LIMIT = 16.0  # colour levels: the largest step across the mask edge that the blend removes
TOL = 1e-2  # root-mean-square residual per unknown pixel, colour levels


def _neighbour_sum(x: np.ndarray) -> np.ndarray:
    """Sum of the 4 neighbours inside the image, (H, W, C)."""
    s = np.zeros_like(x)
    s[1:] += x[:-1]
    s[:-1] += x[1:]
    s[:, 1:] += x[:, :-1]
    s[:, :-1] += x[:, 1:]
    return s


def _degree(h: int, w: int) -> np.ndarray:
    """Neighbours inside the image per pixel (borders reflect: no flux out), (H, W, 1)."""
    return _neighbour_sum(np.ones((h, w, 1)))


def _guidance_divergence(generated: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Sum over each pixel's edges of g_i - g_j, counting only edges with both ends in the region."""
    wh = (region[:, :-1] & region[:, 1:])[..., None]  # (H, W-1, 1)
    wv = (region[:-1] & region[1:])[..., None]  # (H-1, W, 1)
    vh = wh * (generated[:, :-1] - generated[:, 1:])  # (H, W-1, C)
    vv = wv * (generated[:-1] - generated[1:])  # (H-1, W, C)
    out = np.zeros_like(generated)
    out[:, :-1] += vh
    out[:, 1:] -= vh
    out[:-1] += vv
    out[1:] -= vv
    return out


def _neighbour_index(unknown: np.ndarray) -> np.ndarray:
    """For each unknown pixel (row-major), the positions of its 4 neighbours among the unknowns; n (one past
    the end) for a neighbour that is fixed or outside the image. (n, 4) int."""
    h, w = unknown.shape
    n = int(unknown.sum())
    pos = np.full((h + 2, w + 2), n, np.int64)  # a ring of "fixed" around the image
    pos[1:-1, 1:-1][unknown] = np.arange(n)
    ys, xs = np.nonzero(unknown)
    ys, xs = ys + 1, xs + 1
    return np.stack([pos[ys - 1, xs], pos[ys + 1, xs], pos[ys, xs - 1], pos[ys, xs + 1]], axis=1)


def _conjugate_gradients(res: np.ndarray, unknown: np.ndarray, deg: np.ndarray, max_iter: int) -> np.ndarray:
    """x on `unknown` (zero elsewhere) with deg x_i - sum of unknown neighbours x_j = res_i; per channel.
    Works on the unknown pixels only, so a thin band costs what its pixels cost, not the whole image."""
    nbr = _neighbour_index(unknown)  # (n, 4)
    b = res[unknown]  # (n, C)
    d = deg[unknown]  # (n, 1)
    n = b.shape[0]
    pad = np.zeros((1, b.shape[1]))

    def apply(p: np.ndarray) -> np.ndarray:
        q = np.concatenate([p, pad])  # (n + 1, C): the last row stands for every fixed neighbour
        return d * p - q[nbr].sum(axis=1)

    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rs = (r * r).sum(axis=0)  # (C,)
    limit = (TOL * TOL) * max(n, 1)
    for _ in range(max_iter):
        if rs.max() <= limit:
            break
        ap = apply(p)
        alpha = rs / np.maximum((p * ap).sum(axis=0), 1e-30)
        x += alpha * p
        r -= alpha * ap
        new = (r * r).sum(axis=0)
        p = r + (new / np.maximum(rs, 1e-30)) * p
        rs = new
    out = np.zeros_like(res)
    out[unknown] = x
    return out


def _half(x: np.ndarray) -> np.ndarray:
    """2x2 mean, edge-padded to even sides: (H, W, ...) -> (ceil(H/2), ceil(W/2), ...)."""
    pad = [(0, x.shape[0] % 2), (0, x.shape[1] % 2)] + [(0, 0)] * (x.ndim - 2)
    x = np.pad(x, pad, mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def _double(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of (h, w, C) to size (H, W)."""
    h, w = size
    return np.stack([np.asarray(Image.fromarray(x[..., c].astype(np.float32), mode="F")
                                .resize((w, h), Image.Resampling.BILINEAR), np.float64)
                     for c in range(x.shape[2])], axis=2)


def _distance_within(region: np.ndarray, reach: int) -> np.ndarray:
    """Region pixels at most `reach` 4-steps from a pixel outside it, (H, W) bool."""
    near = np.zeros_like(region)
    front = ~region
    for _ in range(reach):
        grown = front.copy()
        grown[1:] |= front[:-1]
        grown[:-1] |= front[1:]
        grown[:, 1:] |= front[:, :-1]
        grown[:, :-1] |= front[:, 1:]
        near |= grown & region
        front = grown
    return near


def _band_start(offset: np.ndarray, region: np.ndarray, direct_side: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Where to start a full-size solve and which pixels it solves: for a small image, nothing and all of the
    region; else the smooth shift solved at half size (`_shift`) and a band along the mask edge."""
    h, w = region.shape
    if max(h, w) <= direct_side:
        return np.zeros_like(offset), region, 8 * (h + w) + 100
    coarse = _shift(_half(offset), _half(region.astype(np.float64)) > 0, direct_side)
    return _double(coarse, (h, w)), _distance_within(region, BAND_PX), 16 * BAND_PX + 100


def _shift(offset: np.ndarray, region: np.ndarray, direct_side: int) -> np.ndarray:
    """The harmonic field (H, W, C) inside `region` that takes the values of `offset` outside it."""
    start, unknown, max_iter = _band_start(offset, region, direct_side)
    field = np.where(region[..., None], start, offset)
    deg = _degree(*region.shape)
    field += _conjugate_gradients(_neighbour_sum(field) - deg * field, unknown, deg, max_iter)
    return field


def _solve(original: np.ndarray, generated: np.ndarray, region: np.ndarray, direct_side: int) -> np.ndarray:
    """The blended image (H, W, C) float: original outside `region`, the gradient-domain solution inside.

    Large images start from the generated pixels plus a smooth shift solved at half size: the harmonic
    field that takes, outside the region, the original's offset from the generated image there (close
    to what the full solve gives away from the edge), then solve exactly within a band along the edge."""
    offset = np.where(region[..., None], 0.0, original - generated)  # (H, W, C)
    shift, unknown, max_iter = _band_start(offset, region, direct_side)
    field = np.where(region[..., None], generated + shift, original)  # (H, W, C)
    deg = _degree(*region.shape)
    res = _neighbour_sum(field) - deg * field + _guidance_divergence(generated, region)
    field += _conjugate_gradients(res, unknown, deg, max_iter)
    return field


def seamless(original: np.ndarray, generated: np.ndarray, mask: np.ndarray, direct_side: int = DIRECT_SIDE,
             limit: float | None = LIMIT) -> np.ndarray:
    """Generated (H, W, 3) uint8 solved into original (H, W, 3) uint8 where `mask` (H, W) > 0, keeping its
    gradients there; pixels outside bit-exact. `limit`: the largest offset removed at the edge (None: any).
    Images with a side over `direct_side` solve at half size first (see the module notes)."""
    region = np.asarray(mask) > 0
    if not region.any():
        return original.copy()
    if region.all():  # nothing to meet
        return generated.copy()
    orig = original.astype(np.float64)
    if limit is not None:  # where the two disagree by more than a colour offset, meet them only that far
        orig = generated + np.clip(orig - generated, -limit, limit)
    out = _solve(orig, generated.astype(np.float64), region, direct_side)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    out[~region] = original[~region]
    return out
