"""The built-in procedural world: scene specs, renderer with exact ground truth, captions and prompts.

    spec = sample_scene(np.random.default_rng(0))
    r = render_scene(spec, 128, 128)          # r.image, r.depth, r.instance, r.semantic, r.edges, ...
    cap = describe(spec, rng, render=r)       # cap.text, cap.structured
"""

from mediagen.world.captions import (
    Caption,
    check_caption,
    check_meta,
    describe,
    make_geneval_prompts,
    relative_position,
    spec_from_prompt_meta,
)
from mediagen.world.color import classify_color
from mediagen.world.render import SEMANTIC_CLASSES, SEMANTIC_PALETTE, ObjectInfo, Render, render_scene
from mediagen.world.sample import sample_scene
from mediagen.world.spec import (
    BACKGROUNDS,
    COLORS,
    MATERIALS,
    PATTERNS,
    POSES,
    SHAPES,
    SIZES,
    Camera,
    FigureSpec,
    ObjectSpec,
    SceneSpec,
)
from mediagen.world.splits import HELDOUT_COMBOS, HELDOUT_TEMPLATES, SUBJECTS, Subject

__all__ = [
    "BACKGROUNDS", "COLORS", "HELDOUT_COMBOS", "HELDOUT_TEMPLATES", "MATERIALS", "PATTERNS", "POSES",
    "SEMANTIC_CLASSES", "SEMANTIC_PALETTE", "SHAPES", "SIZES", "SUBJECTS", "Camera", "Caption",
    "FigureSpec", "ObjectInfo", "ObjectSpec", "Render", "SceneSpec", "Subject", "check_caption",
    "check_meta", "classify_color", "describe", "make_geneval_prompts", "relative_position",
    "render_scene", "sample_scene", "spec_from_prompt_meta",
]  # fmt: skip
