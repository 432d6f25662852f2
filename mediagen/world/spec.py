"""Scene description of the built-in world: vocabulary, objects, figures, camera, JSON round trip."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

SHAPES = ("sphere", "cube", "cylinder", "cone", "pyramid")
COLOR_RGB = MappingProxyType(
    {
        "red": (205, 35, 35),
        "orange": (245, 135, 25),
        "yellow": (240, 215, 35),
        "green": (45, 170, 55),
        "cyan": (35, 195, 210),
        "blue": (40, 75, 215),
        "purple": (135, 55, 200),
        "pink": (245, 115, 185),
        "brown": (105, 60, 25),
        "white": (240, 240, 240),
        "gray": (100, 100, 105),
    }
)
COLORS = tuple(COLOR_RGB)
SIZES = ("small", "medium", "large")
SIZE_RADIUS = MappingProxyType({"small": 0.36, "medium": 0.52, "large": 0.72})  # world units
MATERIALS = ("matte", "metal")
PATTERNS = ("none", "stripes", "checks", "dots")
POSES = ("standing", "walking", "waving", "arms_up", "arms_out", "pointing", "sitting", "jumping")
BACKGROUNDS = ("sky", "dusk", "overcast", "studio", "beige", "slate")
RELATIONS = ("left of", "right of", "above", "below", "in front of", "behind", "on top of")

# (kind, top colour, horizon/bottom colour, floor colour); "wall" backgrounds stand at WALL_Z.
BACKGROUND_STYLE = MappingProxyType(
    {
        "sky": ("sky", (85, 145, 215), (200, 222, 242), (168, 162, 152)),
        "dusk": ("sky", (60, 62, 120), (238, 172, 135), (150, 140, 136)),
        "overcast": ("sky", (150, 158, 170), (218, 218, 220), (142, 142, 138)),
        "studio": ("wall", (212, 212, 212), (178, 178, 178), (128, 128, 130)),
        "beige": ("wall", (232, 218, 192), (200, 185, 160), (150, 138, 122)),
        "slate": ("wall", (150, 162, 178), (118, 128, 142), (160, 156, 150)),
    }
)
WALL_Z = 15.0
FIGURE_HEIGHT = 1.8


@dataclass
class ObjectSpec:
    """One solid resting on the floor at (x, z); `y` lifts it (0 = on the floor)."""

    shape: str
    color: str
    size: str = "medium"
    material: str = "matte"
    pattern: str = "none"
    x: float = 0.0
    z: float = 7.0
    rotation: float = 0.0  # radians about the vertical axis
    pattern_color: str = "white"
    y: float = 0.0

    def __post_init__(self) -> None:
        """Reject words outside the vocabulary."""
        _check(self.shape, SHAPES, "shape")
        _check(self.color, COLORS, "color")
        _check(self.size, SIZES, "size")
        _check(self.material, MATERIALS, "material")
        _check(self.pattern, PATTERNS, "pattern")
        _check(self.pattern_color, COLORS, "pattern_color")

    @property
    def radius(self) -> float:
        """Nominal size in world units."""
        return SIZE_RADIUS[self.size]


@dataclass
class FigureSpec:
    """A stick figure standing on the floor; `angles` overrides the named pose's limb angles."""

    pose: str = "standing"
    x: float = 0.0
    z: float = 7.0
    color: str = "blue"
    facing: float = 0.0  # radians; 0 faces the camera, +pi/2 faces image left
    height: float = FIGURE_HEIGHT
    angles: dict[str, list[float]] | None = None

    def __post_init__(self) -> None:
        """Reject words outside the vocabulary."""
        _check(self.pose, POSES, "pose")
        _check(self.color, COLORS, "color")


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at (x, height, 0) looking along +z, pitched down, optionally panned."""

    height: float = 3.0
    pitch: float = 14.0  # degrees below the horizon
    fov: float = 40.0  # vertical field of view, degrees
    x: float = 0.0
    yaw: float = 0.0  # degrees; positive pans right
    near: float = 2.0  # depth mapped to 0 in the normalised depth map
    far: float = 24.0  # depth mapped to 1 (the sky is 1 too)


@dataclass
class SceneSpec:
    """Everything needed to render one scene; `aspect` is width / height used when placing."""

    objects: list[ObjectSpec] = field(default_factory=list)
    figures: list[FigureSpec] = field(default_factory=list)
    camera: Camera = field(default_factory=Camera)
    background: str = "sky"
    aspect: float = 1.0

    def __post_init__(self) -> None:
        """Reject unknown backgrounds."""
        _check(self.background, BACKGROUNDS, "background")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain lists, floats and strings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneSpec:
        """Inverse of `to_dict`."""
        return cls(
            objects=[ObjectSpec(**o) for o in d.get("objects", [])],
            figures=[FigureSpec(**f) for f in d.get("figures", [])],
            camera=Camera(**d.get("camera", {})),
            background=d.get("background", "sky"),
            aspect=float(d.get("aspect", 1.0)),
        )


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    """Raise ValueError when `value` is not one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
