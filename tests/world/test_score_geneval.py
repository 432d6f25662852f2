"""GenEval scoring validated both ways: ground-truth renders pass, deliberately wrong renders fail."""

from __future__ import annotations

import numpy as np
import pytest

from mediagen.errors import RequestError
from mediagen.world import make_geneval_prompts, render_scene, spec_from_prompt_meta
from mediagen.world.captions import GENEVAL_TAGS, relative_position
from mediagen.world.score.detect import Detection, load_shape_model
from mediagen.world.score.geneval import check_record, judge, score_image, summarize
from mediagen.world.score.wrong import CORRUPTIONS, DEFAULT_CORRUPTION, wrong_spec

N_PER_TAG = 10


@pytest.fixture(scope="module")
def model():
    return load_shape_model()


@pytest.mark.parametrize("tag", GENEVAL_TAGS)
def test_ground_truth_passes_and_wrong_renders_fail(tag, model):
    rng = np.random.default_rng(GENEVAL_TAGS.index(tag) + 40)
    good = bad = 0
    for meta in make_geneval_prompts(tag, N_PER_TAG, rng, split="test"):
        spec = spec_from_prompt_meta(meta, rng)
        good += score_image(render_scene(spec, 128, 128).image, meta, model=model).correct
        wrong = wrong_spec(meta, spec, DEFAULT_CORRUPTION[tag], rng)
        bad += score_image(render_scene(wrong, 128, 128).image, meta, model=model).correct
    assert good >= N_PER_TAG - 1, f"{tag}: ground truth passed {good}/{N_PER_TAG}"
    assert bad <= 1, f"{tag}: wrong renders passed {bad}/{N_PER_TAG}"


def test_every_corruption_breaks_the_record(model):
    rng = np.random.default_rng(7)
    meta = {"tag": "color_attr", "prompt": "a red cube and a blue sphere",
            "include": [{"class": "cube", "count": 1, "color": "red"}, {"class": "sphere", "count": 1, "color": "blue"}]}  # fmt: skip
    spec = spec_from_prompt_meta(meta, rng)
    assert score_image(render_scene(spec, 128, 128).image, meta, model=model).correct
    for kind in ("shape", "color", "swap_colors"):
        wrong = wrong_spec(meta, spec, kind, rng)
        assert not score_image(render_scene(wrong, 128, 128).image, meta, model=model).correct, kind
    with pytest.raises(ValueError, match="corruption"):
        wrong_spec(meta, spec, "melt", rng)
    assert set(DEFAULT_CORRUPTION.values()) <= set(CORRUPTIONS)


def _det(shape: str, color: str, box, p: float = 0.9) -> Detection:
    """A detection with the given class probability (the rest shared by the other shapes)."""
    probs = {s: (1 - p) / 5 for s in ("sphere", "cube", "cylinder", "cone", "pyramid", "person")}
    probs[shape] = p
    return Detection(shape, color, tuple(float(v) for v in box), 100, np.zeros((1, 1), bool), probs)


def test_judge_follows_genevals_rule():
    pos = {"tag": "position", "prompt": "a sphere left of a cube",
           "include": [{"class": "cube", "count": 1}, {"class": "sphere", "count": 1, "position": ["left of", 0]}]}  # fmt: skip
    left, right = (10, 50, 30, 70), (80, 50, 100, 70)
    assert judge(pos, [_det("cube", "red", right), _det("sphere", "red", left)]).correct
    res = judge(pos, [_det("cube", "red", left), _det("sphere", "red", right)])
    assert not res.correct and "right of" in res.reasons[0]
    count = {"tag": "counting", "prompt": "two cones", "include": [{"class": "cone", "count": 2}],
             "exclude": [{"class": "cone", "count": 3}]}  # fmt: skip
    cones = [_det("cone", "red", (i * 20, 0, i * 20 + 10, 10)) for i in range(3)]
    assert judge(count, cones[:2]).correct
    assert not judge(count, cones).correct  # the exclude entry
    assert not judge(count, cones[:1]).correct
    color = {"tag": "colors", "prompt": "a green cube", "include": [{"class": "cube", "count": 1, "color": "green"}]}
    assert judge(color, [_det("cube", "green", left)]).correct
    assert not judge(color, [_det("cube", "blue", left)]).correct
    # a region ambiguous between two shapes counts for both (GenEval's 0.3 threshold), a clear one does not
    amb = _det("cylinder", "green", left, p=0.55)
    amb.shape_probs["cube"] = 0.4
    assert judge(color, [amb]).correct
    assert not judge(color, [_det("cylinder", "green", left, p=0.95)]).correct


def test_bad_records_get_clear_errors():
    with pytest.raises(RequestError, match="include"):
        check_record({"prompt": "x"})
    with pytest.raises(RequestError, match="torus"):
        check_record({"include": [{"class": "torus", "count": 1}]})
    with pytest.raises(RequestError, match="magenta"):
        check_record({"include": [{"class": "cube", "count": 1, "color": "magenta"}]})
    with pytest.raises(RequestError, match="position"):
        check_record({"include": [{"class": "cube", "count": 1, "position": ["near", 3]}]})


def test_summary_is_the_mean_of_tag_accuracies():
    recs = [{"tag": "colors"}] * 4 + [{"tag": "position"}] * 2
    s = summarize(recs, [True, True, True, False, False, True])
    assert s["tags"]["colors"] == {"accuracy": 0.75, "n": 4}
    assert s["overall"] == pytest.approx((0.75 + 0.5) / 2)


def test_position_scenes_keep_a_safe_margin():
    # the judged rule is GenEval's 0.1 box margin; scenes place their pair well clear of it
    rng = np.random.default_rng(11)
    for meta in make_geneval_prompts("position", 12, rng, split="test"):
        r = render_scene(spec_from_prompt_meta(meta, rng), 128, 128)
        rel, _ = meta["include"][1]["position"]
        axis = 0 if rel in ("left of", "right of") else 1
        target, item = r.objects[0], r.objects[1]
        assert abs(item.center[axis] - target.center[axis]) >= 0.15 * 128, meta["prompt"]
        assert rel in relative_position(item.box, target.box, 0.18), meta["prompt"]
