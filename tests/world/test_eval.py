"""`mediagen eval` and `mediagen world`: prompt files, the world's upper bound, reports and samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mediagen.cli import main as mediagen_main
from mediagen.world.captions import GENEVAL_TAGS
from mediagen.world.evaluate import DEFAULT_PROMPTS, main, read_records
from mediagen.world.splits import has_heldout_text


def test_shipped_prompts_are_held_out_and_cover_every_category():
    recs = read_records(DEFAULT_PROMPTS)
    for tag in GENEVAL_TAGS:
        mine = [r for r in recs if r["tag"] == tag]
        assert len(mine) >= 200, tag
        assert all(has_heldout_text(r["prompt"]) for r in mine)
    assert len({r["seed"] for r in recs}) == len(recs)  # every record renders its own scene


def test_make_prompts_writes_records(tmp_path, capsys):
    out = tmp_path / "pos.jsonl"
    assert main(["--make-prompts", "position", "--count", "5", "-o", str(out)]) == 0
    recs = read_records(out)
    assert len(recs) == 5 and all(r["tag"] == "position" for r in recs)
    assert main(["--make-prompts", "colors", "--count", "2", "--mode", "inpaint"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and all("mask" in r and "scene" in r for r in lines)


@pytest.mark.parametrize("mode,control", [("t2i", None), ("inpaint", None), ("outpaint", None), ("i2i", None),
                                          ("t2i", "depth")])  # fmt: skip
def test_world_is_the_upper_bound(tmp_path, mode, control, capsys):
    prompts = tmp_path / "p.jsonl"
    args = ["--make-prompts", "all", "--count", "1", "--mode", mode, "-o", str(prompts), "--seed", "3"]
    assert main(args + (["--control", control] if control else [])) == 0
    out = tmp_path / "run"
    assert main(["--model", "world", "--mode", mode, "--prompts", str(prompts), "--json", "--out", str(out)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["outputs"] == len(GENEVAL_TAGS)
    assert rep["overall"] >= 5 / 6, rep["tags"]
    full = json.loads((out / "report.json").read_text())
    assert len(full["rows"]) == len(GENEVAL_TAGS)
    if mode in ("inpaint", "outpaint"):
        assert full["means"]["kept"] == 1.0
    if control:
        assert full["means"]["control_score"] > 0.5
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 128 and sheet.height >= 128
    page = (out / "index.html").read_text()
    assert page.count("<figure") == len(GENEVAL_TAGS) and "overall" in page
    assert all((out / r).is_file() for r in [f"samples/{i:04d}-0.png" for i in range(len(GENEVAL_TAGS))])


def test_eval_through_the_cli_entry_point(tmp_path, capsys):
    assert mediagen_main(["eval", "--model", "world", "--limit", "6", "--tags", "colors", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["tags"]["colors"]["n"] == 6 and rep["prompts"].endswith("geneval_test.jsonl")


def test_eval_errors_name_the_problem(tmp_path, capsys):
    assert main(["--prompts", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    assert main(["--model", "world", "--prompts", str(bad)]) == 2
    assert "include" in capsys.readouterr().err
    assert main(["--make-prompts", "shapes", "--count", "1"]) == 2
    assert "unknown category" in capsys.readouterr().err


def test_world_sample_writes_scenes_maps_and_clips(tmp_path):
    out = tmp_path / "w"
    assert mediagen_main(["world", "sample", "--n", "2", "--clips", "1", "-o", str(out)]) == 0
    for k in range(2):
        stem = out / f"scene_{k:04d}"
        for suffix in ("", "_depth", "_seg", "_edges", "_pose", "_normals"):
            assert Image.open(f"{stem}{suffix}.png").size == (128, 128)
        meta = json.loads(Path(f"{stem}.json").read_text())
        assert meta["caption"] == Path(f"{stem}.txt").read_text().strip() and meta["spec"]["objects"] is not None
    assert (out / "clip_0000.mp4").stat().st_size > 1000
    assert json.loads((out / "clip_0000.json").read_text())["events"] is not None
    assert "scene_0001.png" in (out / "index.html").read_text()


def test_text_to_video_records_and_the_worlds_clips(tmp_path, capsys):
    prompts = tmp_path / "motion.jsonl"
    assert main(["--make-prompts", "motion", "--mode", "t2v", "--count", "2", "-o", str(prompts)]) == 0
    recs = read_records(prompts)
    assert all(r["tag"] == "motion" and r["motions"] and r["motions"][0]["direction"] for r in recs)
    assert main(["--model", "world", "--mode", "t2v", "--prompts", str(prompts), "--size", "96x96", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["tags"]["motion"] == {"accuracy": 1.0, "n": 2}
    assert main(["--model", "world", "--mode", "t2v", "--prompts", str(DEFAULT_PROMPTS), "--limit", "1"]) == 2
    assert "needs 'clip' and 'motions'" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["i2v", "v2v"])
def test_image_and_video_to_video_score_the_worlds_clips_as_the_upper_bound(tmp_path, mode, capsys):
    prompts = tmp_path / "p.jsonl"
    assert main(["--make-prompts", "motion", "--mode", mode, "--count", "2", "--seed", "5", "-o", str(prompts)]) == 0
    recs = read_records(prompts)
    assert all(r["motions"] and r["pan"] in ("left", "right", "none") for r in recs)
    if mode == "v2v":
        assert all(r["recolor"] and r["target"]["scene"]["background"] != r["clip"]["scene"]["background"] for r in recs)
    out = tmp_path / "run"
    args = ["--model", "world", "--mode", mode, "--prompts", str(prompts), "--size", "96x96", "--json", "--out", str(out)]
    assert main(args) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["tags"]["motion"] == {"accuracy": 1.0, "n": 2}, rep
    if mode == "i2v":
        assert rep["means"]["first_frame"] == 1.0
    else:
        assert rep["means"]["colors"] == 1.0 and rep["means"]["trajectory"] > 0.8
    assert Image.open(out / "samples/0000-0.png").width == 3 * 96  # first, middle and last frame


def test_clips_with_sounds_score_the_worlds_soundtrack(tmp_path, capsys):
    prompts = tmp_path / "sound.jsonl"
    assert main(["--make-prompts", "sound", "--mode", "t2v", "--count", "2", "--seed", "2", "-o", str(prompts)]) == 0
    recs = read_records(prompts)
    assert all(r["tag"] == "sound" and set(r["sound"]) == {"events", "spans"} for r in recs)
    assert main(["--model", "world", "--mode", "t2v", "--prompts", str(prompts), "--size", "96x96", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["tags"]["sound"] == {"accuracy": 1.0, "n": 2}, rep
    assert rep["means"]["audio"] == 1.0 and rep["means"]["audio_max_offset_ms"] == 0.0


def test_a_model_without_video_modes_says_so(tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    assert main(["--make-prompts", "motion", "--mode", "i2v", "--count", "1", "-o", str(prompts)]) == 0
    assert main(["--model", "builtin", "--mode", "i2v", "--prompts", str(prompts), "--size", "64x64", "--json"]) == 2
    assert "mode 'i2v' is not supported" in capsys.readouterr().err
    assert main(["--make-prompts", "motion", "--mode", "t2i", "--count", "1"]) == 2
    assert "video records are made with --mode" in capsys.readouterr().err


def test_eval_passes_sampler_and_guidance_to_the_model(capsys):
    common = ["--model", "builtin", "--limit", "1", "--tags", "colors", "--steps", "2", "--size", "64x64", "--json"]
    assert main([*common, "--sampler", "dpmpp_2m", "--guidance", "1.5"]) == 0
    assert json.loads(capsys.readouterr().out)["tags"]["colors"]["n"] == 1
    assert main([*common, "--sampler", "no_such_sampler"]) == 2
    assert "no_such_sampler" in capsys.readouterr().err
