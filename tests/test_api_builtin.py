"""The whole path on the shipped built-in model: API, recipes, rerun, CLI progress and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import mediagen
from mediagen.cli import main
from mediagen.media import read_recipe

FAST = {"steps": 2, "width": 64, "height": 64}


def test_t2i_save_info_and_rerun_are_bit_identical(tmp_path, capsys):
    out = tmp_path / "a.png"
    assert main(["t2i", "a red cube", "--seed", "5", "--steps", "2", "--size", "64x64", "-o", str(out)]) == 0
    assert "mode: t2i" in capsys.readouterr().out
    recipe = read_recipe(out)
    assert recipe["seed"] == 5 and recipe["request"]["steps"] == 2 and recipe["model"] == "builtin"
    assert "Steps: 2" in Image.open(out).info["parameters"]
    again = tmp_path / "b.png"
    assert main(["rerun", str(out), "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 5


def test_generate_infers_and_reports_the_mode(tmp_path, capsys):
    src = tmp_path / "in.png"
    mediagen.t2i("a blue sphere", seed=1, **FAST).save(src)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    rc = main(["generate", "a green cone", "--image", str(src), "--mask", str(tmp_path / "m.png"), "--seed", "2",
               "--steps", "2", "-o", str(tmp_path / "o.png")])
    assert rc == 0 and "mode: inpaint" in capsys.readouterr().out
    a, b = np.asarray(Image.open(src)), np.asarray(Image.open(tmp_path / "o.png"))
    assert np.array_equal(a[mask == 0], b[mask == 0])


def test_batch_items_use_consecutive_seeds(tmp_path):
    res = mediagen.t2i("two yellow cubes", seed=10, n=2, **FAST)
    single = mediagen.t2i("two yellow cubes", seed=11, **FAST)
    assert [r["seed"] for r in res.recipes] == [10, 11]
    assert np.array_equal(np.asarray(res.images[1]), np.asarray(single.image))
    paths = res.save(tmp_path / "x.png")
    assert [p.name for p in paths] == ["x-1.png", "x-2.png"] and all(p.is_file() for p in paths)


def test_unsupported_option_lists_what_the_model_supports(capsys):
    assert main(["t2v", "a ball rolls", "--frames", "8"]) == 2
    err = capsys.readouterr().err
    assert "mode 't2v' is not supported" in err and "supports modes: t2i" in err


def test_ctrl_c_stops_between_steps_and_writes_nothing(tmp_path):
    out = tmp_path / "never.png"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "mediagen.cli", "t2i", "a cube", "--steps", "400", "--size",
                             "64x64", "-o", str(out)], stderr=subprocess.PIPE, env=env, text=True)
    seen = ""
    deadline = time.monotonic() + 120
    while "1/400" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.read(1)
    assert "1/400" in seen, seen
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, rest
    assert "cancelled" in rest and not out.exists()
