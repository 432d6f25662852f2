"""Camera maths and object dimensions of the world (world: x right, y up, z away from the camera)."""

from __future__ import annotations

import math

import numpy as np

from mediagen.world.spec import Camera, ObjectSpec

LIGHT_DIR = (-0.45, 0.8, -0.4)  # towards the light: upper left, slightly in front


def light_dir() -> np.ndarray:
    """Unit vector pointing to the light, (3,)."""
    v = np.asarray(LIGHT_DIR, dtype=np.float64)
    return v / np.linalg.norm(v)


def camera_frame(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Camera origin (3,) and rotation (3, 3) whose rows are right, up, forward in world coordinates."""
    p, y = math.radians(cam.pitch), math.radians(cam.yaw)
    right = (math.cos(y), 0.0, -math.sin(y))
    up = (math.sin(p) * math.sin(y), math.cos(p), math.sin(p) * math.cos(y))
    fwd = (math.cos(p) * math.sin(y), -math.sin(p), math.cos(p) * math.cos(y))
    return np.array([cam.x, cam.height, 0.0]), np.array([right, up, fwd])


def focal(cam: Camera, height: int) -> float:
    """Focal length in pixels for an image `height` pixels tall."""
    return (height / 2.0) / math.tan(math.radians(cam.fov) / 2.0)


def pixel_rays(cam: Camera, width: int, height: int) -> np.ndarray:
    """World direction of every pixel centre, (H, W, 3), scaled so that t along it is camera depth."""
    f = focal(cam, height)
    _, rot = camera_frame(cam)
    xs = (np.arange(width) + 0.5 - width / 2.0) / f  # (W,)
    ys = -(np.arange(height) + 0.5 - height / 2.0) / f  # (H,)
    d = xs[None, :, None] * rot[0] + ys[:, None, None] * rot[1] + rot[2]  # (H, W, 3)
    return d


def project(cam: Camera, pts: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and camera depth (N,) of world points (N, 3)."""
    origin, rot = camera_frame(cam)
    c = (np.asarray(pts, dtype=np.float64) - origin) @ rot.T  # (N, 3)
    z = c[:, 2]
    f = focal(cam, height)
    zs = np.where(z > 1e-6, z, 1e-6)
    uv = np.stack([width / 2.0 + f * c[:, 0] / zs, height / 2.0 - f * c[:, 1] / zs], axis=1)
    return uv, z


def yaw_matrix(angle: float) -> np.ndarray:
    """Rotation (3, 3) about the vertical axis taking local to world coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def dims(obj: ObjectSpec) -> tuple[float, float]:
    """(half width of the local bounding box, height) of an object."""
    r = obj.radius
    return {
        "sphere": (r, 2 * r),
        "cube": (0.82 * r, 1.64 * r),
        "cylinder": (0.82 * r, 1.7 * r),
        "cone": (r, 2.1 * r),
        "pyramid": (0.9 * r, 1.9 * r),
    }[obj.shape]


def footprint_radius(obj: ObjectSpec) -> float:
    """Radius of the circle on the floor that the object covers at any rotation."""
    half, _ = dims(obj)
    return half * math.sqrt(2.0) if obj.shape in ("cube", "pyramid") else half


def object_corners(obj: ObjectSpec) -> np.ndarray:
    """World coordinates (8, 3) of the corners of the object's rotated bounding box."""
    half, h = dims(obj)
    sx = np.array([-half, half])
    local = np.array([(x, y, z) for x in sx for y in (0.0, h) for z in sx])  # (8, 3)
    return local @ yaw_matrix(obj.rotation).T + np.array([obj.x, obj.y, obj.z])


def screen_box(cam: Camera, pts: np.ndarray, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Screen bounding box (x0, y0, x1, y1) of world points (N, 3), None when any is behind the camera."""
    uv, z = project(cam, pts, width, height)
    if np.any(z < 0.1):
        return None
    return float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())


def view_half_width(cam: Camera, aspect: float) -> float:
    """tan of half the horizontal field of view for an image of this aspect (width / height)."""
    return math.tan(math.radians(cam.fov) / 2.0) * aspect
