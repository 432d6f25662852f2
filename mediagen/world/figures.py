"""Articulated stick figures: named poses, COCO-17 joints in world space, OpenPose-18 conversion."""

from __future__ import annotations

import math

import numpy as np

from mediagen.world.geometry import yaw_matrix
from mediagen.world.spec import FigureSpec

COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_SKELETON = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
# OpenPose-18 joint k is COCO joint OPENPOSE_FROM_COCO[k]; -1 is the neck (mid shoulders).
OPENPOSE_FROM_COCO = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
OPENPOSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
SEGMENTS = ("l_uarm", "l_farm", "r_uarm", "r_farm", "l_thigh", "l_shin", "r_thigh", "r_shin")
# Drawn capsules between COCO joints (and "neck"/"pelvis"/"head"), with radius factors.
LIMBS = (
    ("neck", "pelvis", 1.9), (5, 6, 1.0), (11, 12, 1.2), (5, 11, 1.0), (6, 12, 1.0),
    (5, 7, 1.0), (7, 9, 0.9), (6, 8, 1.0), (8, 10, 0.9),
    (11, 13, 1.2), (13, 15, 1.0), (12, 14, 1.2), (14, 16, 1.0), ("neck", "head", 0.8),
)  # fmt: skip
LIMB_RADIUS = 0.035  # fraction of the figure height
HEAD_RADIUS = 0.085


def pose_angles(pose: str) -> dict[str, tuple[float, float]]:
    """(abduction, flexion) in degrees of every limb segment for a named pose."""
    stand = {"l_uarm": (10, 0), "l_farm": (8, 8), "l_thigh": (4, 0), "l_shin": (3, 0)}
    poses = {
        "standing": {},
        "walking": {"l_uarm": (6, -28), "l_farm": (6, -5), "r_uarm": (6, 28), "r_farm": (6, 55),
                    "l_thigh": (3, 28), "l_shin": (3, 5), "r_thigh": (3, -18), "r_shin": (3, -55)},
        "waving": {"r_uarm": (115, 10), "r_farm": (168, 10)},
        "arms_up": {"l_uarm": (165, 5), "l_farm": (172, 5), "r_uarm": (165, 5), "r_farm": (172, 5)},
        "arms_out": {"l_uarm": (88, 0), "l_farm": (90, 0), "r_uarm": (88, 0), "r_farm": (90, 0)},
        "pointing": {"r_uarm": (8, 85), "r_farm": (8, 88)},
        "sitting": {"l_uarm": (10, 35), "l_farm": (8, 70), "r_uarm": (10, 35), "r_farm": (8, 70),
                    "l_thigh": (6, 85), "l_shin": (4, 5), "r_thigh": (6, 85), "r_shin": (4, 5)},
        "jumping": {"l_uarm": (150, 10), "l_farm": (165, 10), "r_uarm": (150, 10), "r_farm": (165, 10),
                    "l_thigh": (12, 45), "l_shin": (8, -35), "r_thigh": (12, 45), "r_shin": (8, -35)},
    }[pose]  # fmt: skip
    out = {}
    for seg in SEGMENTS:
        mirror = "l_" + seg[2:]
        out[seg] = tuple(float(a) for a in poses.get(seg, poses.get(mirror, stand[mirror])))
    return out


def _direction(side: float, abd: float, flex: float) -> np.ndarray:
    """Unit body-frame direction (3,) of a limb from its abduction and flexion in degrees."""
    a, f = math.radians(abd), math.radians(flex)
    return np.array([side * math.sin(a), -math.cos(a) * math.cos(f), math.cos(a) * math.sin(f)])


def body_joints(fig: FigureSpec) -> dict[str | int, np.ndarray]:
    """Body-frame joints (x = figure's left, y up, z forward) standing on y = 0, in world units."""
    h = fig.height
    ang = pose_angles(fig.pose)
    if fig.angles:
        ang.update({k: (float(v[0]), float(v[1])) for k, v in fig.angles.items() if k in SEGMENTS})
    j: dict[str | int, np.ndarray] = {}
    pelvis = np.array([0.0, 0.53 * h, 0.0])
    neck = pelvis + np.array([0.0, 0.30 * h, 0.0])
    j["pelvis"], j["neck"] = pelvis, neck
    j["head"] = neck + np.array([0.0, 0.045 * h + HEAD_RADIUS * h, 0.0])
    for side, s in (("l", 1.0), ("r", -1.0)):
        off = 0 if side == "l" else 1
        sho = neck + np.array([s * 0.12 * h, -0.02 * h, 0.0])
        hip = pelvis + np.array([s * 0.08 * h, 0.0, 0.0])
        elb = sho + 0.17 * h * _direction(s, *ang[f"{side}_uarm"])
        wri = elb + 0.15 * h * _direction(s, *ang[f"{side}_farm"])
        knee = hip + 0.25 * h * _direction(s, *ang[f"{side}_thigh"])
        ank = knee + 0.25 * h * _direction(s, *ang[f"{side}_shin"])
        for idx, p in zip((5, 7, 9, 11, 13, 15), (sho, elb, wri, hip, knee, ank)):
            j[idx + off] = p
    _add_face(j, HEAD_RADIUS * h)
    lowest = min(p[1] for k, p in j.items() if k in (13, 14, 15, 16))
    lift = np.array([0.0, 0.03 * h - lowest, 0.0])
    return {k: p + lift for k, p in j.items()}


def _add_face(j: dict[str | int, np.ndarray], r: float) -> None:
    """Nose, eyes and ears on the head sphere (body frame)."""
    c = j["head"]
    j[0] = c + np.array([0.0, -0.1 * r, r])
    j[1] = c + np.array([0.4 * r, 0.25 * r, 0.88 * r])
    j[2] = c + np.array([-0.4 * r, 0.25 * r, 0.88 * r])
    j[3] = c + np.array([0.97 * r, 0.05 * r, -0.2 * r])
    j[4] = c + np.array([-0.97 * r, 0.05 * r, -0.2 * r])


def to_world(fig: FigureSpec, p: np.ndarray) -> np.ndarray:
    """World coordinates of body-frame points (..., 3); facing 0 looks at the camera (-z)."""
    flip = np.asarray(p) * np.array([1.0, 1.0, -1.0])  # body forward +z -> world -z
    return flip @ yaw_matrix(fig.facing).T + np.array([fig.x, 0.0, fig.z])


def world_joints(fig: FigureSpec) -> dict[str | int, np.ndarray]:
    """All joints of `body_joints` in world coordinates."""
    return {k: to_world(fig, p) for k, p in body_joints(fig).items()}


def coco_array(joints: dict[str | int, np.ndarray]) -> np.ndarray:
    """The 17 COCO joints as an array (17, 3)."""
    return np.stack([joints[i] for i in range(17)])


def to_openpose(kp: np.ndarray) -> np.ndarray:
    """COCO keypoints (..., 17, 3) as (x, y, v) to OpenPose-18 (..., 18, 3); neck visible if both shoulders are."""
    kp = np.asarray(kp, dtype=np.float32)
    out = np.zeros(kp.shape[:-2] + (18, 3), dtype=np.float32)
    for k, c in enumerate(OPENPOSE_FROM_COCO):
        if c >= 0:
            out[..., k, :] = kp[..., c, :]
    neck = (kp[..., 5, :2] + kp[..., 6, :2]) / 2.0
    vis = np.minimum(kp[..., 5, 2], kp[..., 6, 2])
    out[..., 1, :2], out[..., 1, 2] = neck, vis
    return out


def facing_word(facing: float) -> str:
    """'the camera', 'away', 'left' or 'right': where a figure with this facing looks in the image."""
    fx, fz = -math.sin(facing), -math.cos(facing)  # world forward of the figure, see to_world
    if abs(fz) >= abs(fx):
        return "the camera" if fz < 0 else "away"
    return "right" if fx > 0 else "left"
