"""Held-out parts of the world: colour-shape combinations, phrasings and named subjects never used in training.

- HELDOUT_COMBOS: 6 of the 55 colour-shape pairs (~11%). `split="train"` scenes never contain them,
  whatever the size, material or pattern; `split="test"` scenes contain at least one.
- HELDOUT_TEMPLATES: phrasings that never appear in training captions; test prompts use them
  ("a photo of ..." is GenEval's own phrasing).
- SUBJECTS: distinctive shape + colour + pattern objects for subject-driven generation; training
  scenes never contain an object with a subject's (shape, colour, pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

from mediagen.world.spec import ObjectSpec

HELDOUT_COMBOS = (
    ("orange", "sphere"),
    ("pink", "cube"),
    ("yellow", "cylinder"),
    ("purple", "cone"),
    ("cyan", "pyramid"),
    ("gray", "cylinder"),
)
HELDOUT_TEMPLATES = ("a photo of {}", "a picture showing {}", "{} can be seen in this image")
HELDOUT_MARKERS = ("a photo of", "a picture showing", "can be seen in this image")  # never in train text
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Subject:
    """A named, distinctive object used as a subject reference."""

    name: str
    shape: str
    color: str
    pattern: str
    pattern_color: str
    material: str = "matte"

    @property
    def description(self) -> str:
        """Plain description, e.g. 'a cyan cube with white dots'."""
        return f"a {self.color} {self.shape} with {self.pattern_color} {self.pattern}"

    def object(self, x: float = 0.0, z: float = 7.0, size: str = "medium", rotation: float = 0.0) -> ObjectSpec:
        """This subject as an ObjectSpec placed at (x, z)."""
        return ObjectSpec(
            self.shape, self.color, size, self.material, self.pattern, x, z, rotation, self.pattern_color
        )


SUBJECTS = (
    Subject("sprinkle", "cube", "cyan", "dots", "white"),
    Subject("beacon", "cone", "orange", "stripes", "white"),
    Subject("marble", "sphere", "blue", "checks", "yellow", "metal"),
    Subject("candy", "cylinder", "pink", "stripes", "white"),
    Subject("jewel", "pyramid", "purple", "dots", "yellow", "metal"),
)


def subject(name: str) -> Subject:
    """The subject called `name`."""
    for s in SUBJECTS:
        if s.name == name:
            return s
    raise KeyError(f"unknown subject {name!r}; expected one of {', '.join(s.name for s in SUBJECTS)}")


def is_heldout_combo(color: str, shape: str) -> bool:
    """True when the colour-shape pair is held out of training."""
    return (color, shape) in HELDOUT_COMBOS


def is_subject_like(obj: ObjectSpec) -> bool:
    """True when an object has a subject's shape, colour and pattern."""
    return any((obj.shape, obj.color, obj.pattern) == (s.shape, s.color, s.pattern) for s in SUBJECTS)


def allowed_in_train(obj: ObjectSpec) -> bool:
    """True when an object may appear in a training scene."""
    return not is_heldout_combo(obj.color, obj.shape) and not is_subject_like(obj)


def has_heldout_text(text: str) -> bool:
    """True when a caption or prompt uses a held-out phrasing."""
    low = text.lower()
    return any(m in low for m in HELDOUT_MARKERS)
