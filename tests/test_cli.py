"""The CLI is generated from the schema; errors name the problem and exit 2."""

import json

import pytest

from mediagen.cli import build_parser, main, request_from_args
from mediagen.schema import GenerationRequest, Mode


def _req(argv):
    args = build_parser().parse_args(argv)
    return request_from_args(args, None if argv[0] == "generate" else Mode(argv[0]))


def test_every_schema_field_has_a_flag():
    text = build_parser()._subparsers._group_actions[0].choices["generate"].format_help()
    for name in GenerationRequest.model_fields:
        if name in ("prompt", "mode", "width", "height"):
            continue
        flag = {"controls": "--control", "references": "--reference", "loras": "--lora",
                "negative_prompt": "--negative"}.get(name, "--" + name.replace("_", "-"))
        assert flag in text, name


def test_structured_options_parse():
    r = _req(["generate", "a cat", "--image", "x.png", "--extend", "10,0,10,0", "--control", "depth=d.png:0.5",
              "--reference", "r.png:style:0.7", "--lora", "l.safetensors:0.8", "--lora", "C:/k.safetensors",
              "--size", "256x128", "-n", "2", "--negative", "blurry", "--seed", "7"])
    assert r.resolved_mode() == Mode.OUTPAINT
    assert (r.width, r.height, r.n, r.seed, r.negative_prompt) == (256, 128, 2, 7, "blurry")
    assert r.controls[0].kind == "depth" and r.controls[0].weight == 0.5
    assert r.references[0].role == "style" and r.references[0].weight == 0.7
    assert [(l.path, l.weight) for l in r.loras] == [("l.safetensors", 0.8), ("C:/k.safetensors", 1.0)]


def test_choice_fields_take_their_choices_only(capsys):
    assert _req(["outpaint", "x", "--image", "a.png", "--extend", "8,0,0,0"]).mask_blend == "gradient"
    argv = ["generate", "x", "--image", "a.png", "--mask", "m.png", "--mask-blend", "feather"]
    assert _req(argv).mask_blend == "feather"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "x", "--mask-blend", "poisson"])
    err = capsys.readouterr().err
    assert "--mask-blend: invalid choice: 'poisson'" in err and "gradient" in err and "feather" in err


def test_mode_commands_fix_the_mode():
    assert _req(["t2i", "x"]).mode == Mode.T2I
    assert _req(["inpaint", "x", "--image", "a.png", "--mask", "m.png"]).resolved_mode() == Mode.INPAINT


@pytest.mark.parametrize("argv,msg", [
    (["inpaint", "x", "--image", "a.png"], "inpaint needs --image and --mask"),
    (["generate", "x", "--mask", "m.png"], "a mask needs the image"),
    (["i2i", "x", "--image", "/nonexistent/a.png"], "no such file"),
])
def test_bad_input_exits_2_with_a_clear_error(argv, msg, capsys):
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_schema_command_prints_the_request_schema(capsys):
    assert main(["schema"]) == 0
    assert "prompt" in json.loads(capsys.readouterr().out)["properties"]
