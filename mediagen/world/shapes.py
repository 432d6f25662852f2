"""Analytic ray casting of the world's solids in their local frame (y up, base centre at the origin)."""

from __future__ import annotations

import numpy as np

from mediagen.world.geometry import dims
from mediagen.world.spec import ObjectSpec

SIDE = 0  # face id of a smooth side (sphere, cylinder or cone mantle); planes are 1..K


def intersect(obj: ObjectSpec, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entry depth t (P,) (inf on a miss), face id (P,) int and local unit normal (P, 3) of rays o + t d."""
    half, h = dims(obj)
    if obj.shape == "sphere":
        return sphere_hit(o - np.array([0.0, half, 0.0]), d, half)
    if obj.shape == "cube":
        planes = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
        return _polyhedron(o, d, planes, np.array([half, half, h, 0.0, half, half]))
    if obj.shape == "pyramid":
        n = np.array([[h, half, 0], [-h, half, 0], [0, half, h], [0, half, -h]], dtype=np.float64)
        norm = np.linalg.norm(n[0])
        planes = np.vstack([n / norm, [[0.0, -1.0, 0.0]]])
        return _polyhedron(o, d, planes, np.array([h * half / norm] * 4 + [0.0]))
    return _solid_of_revolution(o, d, half, h, cone=obj.shape == "cone")


def sphere_hit(oc: np.ndarray, d: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sphere of radius r centred at the origin; `oc` is the ray origin relative to the centre."""
    a = np.einsum("pi,pi->p", d, d)  # (P,)
    b = d @ oc  # (P,)
    c = float(oc @ oc) - r * r
    disc = b * b - a * c
    hit = disc >= 0
    t = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0.0))) / a, np.inf)
    t = np.where(t > 0, t, np.inf)
    n = (oc[None, :] + np.where(np.isfinite(t), t, 0.0)[:, None] * d) / r  # (P, 3)
    return t, np.full(t.shape, SIDE, dtype=np.int32), n


def _planes_interval(o: np.ndarray, d: np.ndarray, planes: np.ndarray, offsets: np.ndarray):
    """Entry t, exit t and entry face (1-based) of rays inside all half-spaces planes . p <= offsets."""
    nd = d @ planes.T  # (P, K)
    num = offsets - planes @ o  # (K,)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num[None, :] / nd  # (P, K)
    t_enter = np.where(nd < 0, t, -np.inf)
    face = np.argmax(t_enter, axis=1)  # (P,)
    t_in = np.take_along_axis(t_enter, face[:, None], axis=1)[:, 0]
    t_out = np.where(nd > 0, t, np.inf).min(axis=1)
    outside = ((nd == 0) & (num[None, :] < 0)).any(axis=1)
    t_in = np.where(outside, np.inf, t_in)
    return t_in, t_out, face.astype(np.int32) + 1


def _polyhedron(o, d, planes, offsets):
    """Convex polyhedron given by its face planes; the normal is the entry face's normal."""
    t_in, t_out, face = _planes_interval(o, d, planes, offsets)
    t = np.where((t_in < t_out) & (t_in > 0), t_in, np.inf)
    return t, face, planes[face - 1]


def _solid_of_revolution(o, d, r, h, cone: bool):
    """Cylinder (radius r) or cone (base radius r, apex at height h) standing on y = 0."""
    planes = np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    t_in, t_out, face = _planes_interval(o, d, planes, np.array([h, 0.0]))
    k2 = (r / h) ** 2 if cone else 0.0
    e = h - o[1]
    a = d[:, 0] ** 2 + d[:, 2] ** 2 - k2 * d[:, 1] ** 2  # (P,)
    b = 2.0 * (o[0] * d[:, 0] + o[2] * d[:, 2]) + 2.0 * k2 * e * d[:, 1]
    c = o[0] ** 2 + o[2] ** 2 - (k2 * e * e if cone else r * r)
    lo, hi = _quadric_interval(a, b, c, t_in)
    enter_side = lo > t_in
    t_in = np.maximum(t_in, lo)
    t_out = np.minimum(t_out, hi)
    t = np.where((t_in < t_out) & (t_in > 0), t_in, np.inf)
    face = np.where(enter_side, SIDE, face).astype(np.int32)
    p = o[None, :] + np.where(np.isfinite(t), t, 0.0)[:, None] * d  # (P, 3)
    rho = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) + 1e-9
    side_n = np.stack([p[:, 0] / rho, np.full_like(rho, r / h if cone else 0.0), p[:, 2] / rho], axis=1)
    side_n /= np.linalg.norm(side_n, axis=1, keepdims=True)
    cap_n = np.where((face == 1)[:, None], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0])
    return t, face, np.where((face == SIDE)[:, None], side_n, cap_n)


def _quadric_interval(a, b, c, t_in):
    """Interval (lo, hi) of t with a t^2 + b t + c <= 0; for a < 0 (two pieces) the piece after t_in."""
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = (-b - sq) / (2.0 * a), (-b + sq) / (2.0 * a)
    rlo, rhi = np.minimum(r1, r2), np.maximum(r1, r2)
    has = disc >= 0
    pos = a > 1e-12
    first = rlo > t_in  # a < 0: the piece (-inf, rlo] still meets [t_in, ...)
    lo = np.where(pos, np.where(has, rlo, np.inf), np.where(has & ~first, rhi, -np.inf))
    hi = np.where(pos, np.where(has, rhi, -np.inf), np.where(has & first, rlo, np.inf))
    return lo, hi


def surface_uv(obj: ObjectSpec, p: np.ndarray, face: np.ndarray, n: np.ndarray) -> np.ndarray:
    """2D surface coordinates (Q, 2) in world units for patterns: arc length and height on round sides."""
    half, _ = dims(obj)
    ang = np.arctan2(p[:, 0], -p[:, 2])  # seam at the back of an unrotated object
    rho = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2)
    if obj.shape == "sphere":
        lat = np.arcsin(np.clip((p[:, 1] - half) / half, -1, 1))
        return np.stack([ang * half, lat * half], axis=1)
    ax = np.abs(n)
    flat = np.where(
        (ax[:, 0] >= ax[:, 2])[:, None], np.stack([p[:, 2], p[:, 1]], 1), np.stack([p[:, 0], p[:, 1]], 1)
    )
    flat = np.where((ax[:, 1] > 0.9)[:, None], np.stack([p[:, 0], p[:, 2]], 1), flat)
    if obj.shape in ("cylinder", "cone"):
        round_uv = np.stack([ang * np.maximum(rho, 0.5 * half), p[:, 1]], axis=1)
        return np.where((face == SIDE)[:, None], round_uv, flat)
    return flat


def pattern_mask(obj: ObjectSpec, p: np.ndarray, face: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Boolean (Q,) where the pattern colour shows, from local hit points p (Q, 3)."""
    if obj.pattern == "none":
        return np.zeros(len(p), dtype=bool)
    r = obj.radius
    if obj.pattern == "stripes":
        return (np.mod(p[:, 1] / (0.42 * r), 1.0) < 0.32) & (np.abs(n[:, 1]) < 0.9)  # sides only
    uv = surface_uv(obj, p, face, n) / (0.55 * r)  # (Q, 2) in pattern cells
    if obj.pattern == "checks":  # every other cell, inset a little: about a third of the surface
        inset = (np.abs(np.mod(uv[:, 0], 1.0) - 0.5) < 0.42) & (np.abs(np.mod(uv[:, 1], 1.0) - 0.5) < 0.42)
        return ((np.floor(uv[:, 0]) + np.floor(uv[:, 1])).astype(np.int64) % 2 == 0) & inset
    row = np.floor(uv[:, 1])
    u = uv[:, 0] + 0.5 * np.mod(row, 2)
    du, dv = np.mod(u, 1.0) - 0.5, np.mod(uv[:, 1], 1.0) - 0.5
    return du * du + dv * dv < 0.24**2
