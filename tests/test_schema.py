"""The request schema: mode resolution, validation, capability checks, prompt weighting."""

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from mediagen.capabilities import Capabilities, check_request
from mediagen.errors import RequestError, UnsupportedError
from mediagen.prompts import parse_weighted, plain_text
from mediagen.schema import Extend, GenerationRequest, Mode, request_json_schema


@pytest.mark.parametrize("fields,mode", [
    ({"prompt": "a cube"}, Mode.T2I),
    ({"image": "a.png"}, Mode.I2I),
    ({"image": "a.png", "mask": "m.png"}, Mode.INPAINT),
    ({"image": "a.png", "extend": Extend(left=32)}, Mode.OUTPAINT),
    ({"frames": 16}, Mode.T2V),
    ({"image": "a.png", "frames": 16}, Mode.I2V),
    ({"video": "v.mp4"}, Mode.V2V),
    ({"audio": True}, Mode.T2V),
])
def test_mode_is_resolved_from_the_inputs(fields, mode):
    assert GenerationRequest(**fields).resolved_mode() == mode


def test_explicit_mode_must_agree_with_inputs():
    with pytest.raises(RequestError, match="inpaint needs --image and --mask"):
        GenerationRequest(prompt="x", image="a.png", mode="inpaint").resolved_mode()
    assert GenerationRequest(image="a.png", mode="i2v").resolved_mode() == Mode.I2V


def test_conditions_combine_with_any_base_mode():
    req = GenerationRequest(prompt="x", image="a.png", mask="m.png",
                            controls=[{"kind": "depth", "image": "d.png"}],
                            references=[{"image": "r.png", "role": "style"}], loras=[{"path": "l.safetensors"}])
    assert req.describe_mode() == "inpaint + control:depth + reference:style + lora"


@pytest.mark.parametrize("fields,msg", [
    ({"mask": "m.png"}, "needs the image"),
    ({"extend": {"left": 8}}, "needs an image"),
    ({"steps": 0}, "steps"),
    ({"strength": 1.5}, "strength"),
    ({"controls": [{"kind": "normal", "image": "x.png"}]}, "kind"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_requests_name_the_problem(fields, msg):
    with pytest.raises(ValidationError, match=msg):
        GenerationRequest(**fields)


def test_in_memory_inputs_serialise_as_content_hashes():
    img = Image.new("RGB", (8, 8), "red")
    dumped = GenerationRequest(image=img, mask=np.ones((8, 8), np.float32)).model_dump(mode="json")
    assert len(dumped["image"]["sha256"]) == 64 and len(dumped["mask"]["sha256"]) == 64


def test_extend_parsing():
    assert Extend.parse("64,0,32,8") == Extend(left=64, top=0, right=32, bottom=8)
    assert Extend.parse("16") == Extend(left=16, top=16, right=16, bottom=16)
    with pytest.raises(RequestError, match="LEFT,TOP,RIGHT,BOTTOM"):
        Extend.parse("1,2")


def test_json_schema_covers_every_mode_input():
    props = request_json_schema()["properties"]
    for key in ("prompt", "image", "mask", "extend", "video", "frames", "controls", "references", "subject",
                "audio", "loras", "seed", "steps", "guidance", "sampler"):
        assert key in props


CAPS = Capabilities(model="m", family="f", modes=[Mode.T2I, Mode.INPAINT], samplers=["euler"],
                    default_sampler="euler", default_steps=4, default_guidance=3.0, default_width=128,
                    default_height=128, size_multiple=32, min_size=64, max_size=256)


def test_unsupported_mode_or_option_lists_what_the_model_supports():
    with pytest.raises(UnsupportedError, match="supports modes: t2i, inpaint"):
        check_request(GenerationRequest(frames=8), CAPS)
    with pytest.raises(UnsupportedError, match="control 'depth' is not supported"):
        check_request(GenerationRequest(controls=[{"kind": "depth", "image": "d.png"}]), CAPS)
    with pytest.raises(UnsupportedError, match="sampler 'dpmpp_2m' is unknown"):
        check_request(GenerationRequest(sampler="dpmpp_2m"), CAPS)
    with pytest.raises(UnsupportedError, match="multiple of 32"):
        check_request(GenerationRequest(width=100), CAPS)
    with pytest.raises(UnsupportedError, match="LoRA is not supported"):
        check_request(GenerationRequest(loras=[{"path": "x"}]), CAPS)
    with pytest.raises(UnsupportedError, match="guidance_end 0.5 is not supported"):
        check_request(GenerationRequest(guidance_end=0.5), CAPS)
    assert check_request(GenerationRequest(guidance_end=1.0), CAPS) == Mode.T2I
    with_end = CAPS.model_copy(update={"default_guidance_end": 1.0})
    assert check_request(GenerationRequest(guidance_end=0.5), with_end) == Mode.T2I
    assert check_request(GenerationRequest(prompt="ok", width=64), CAPS) == Mode.T2I


def test_prompt_weighting_syntax():
    assert parse_weighted("a (red:1.3) cube") == [("a ", 1.0), ("red", 1.3), (" cube", 1.0)]
    runs = dict(parse_weighted("((big)) [small] x"))
    assert runs["big"] == pytest.approx(1.21) and runs["small"] == pytest.approx(1 / 1.1)
    assert plain_text(r"a \(literal\) (b:0.5)") == "a (literal) b"
