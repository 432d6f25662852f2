"""`mediagen train builtin` end to end on a tiny run: render, autoencoder, UNet, resume, export, load, generate."""

from __future__ import annotations

import csv

import numpy as np
import torch

from mediagen.families.builtin import export, load, train
from mediagen.model import Job
from mediagen.schema import GenerationRequest, Mode


def test_tiny_run_trains_resumes_exports_and_loads(tmp_path):
    run, out = tmp_path / "run", tmp_path / "weights"
    common = ["--run", str(run), "--threads", str(torch.get_num_threads())]
    assert train.main([*common, "data", "--scenes", "48", "--shard-size", "24", "--size", "64", "--heldout", "8",
                       "--captions", "2"]) == 0
    assert len(list((run / "data" / "shards").glob("shard_*.npz"))) == 2
    assert train.main([*common, "ae", "--max-steps", "60", "--batch", "8", "--crop", "32", "--ae-channels", "8",
                       "16", "16", "--eval-images", "8"]) == 0
    tiny = ["--batch", "8", "--unet-channels", "16", "32", "32", "--head-dim", "16", "--captions", "2",
            "--sample-every", "60", "--no-adaptive-threads"]
    assert train.main([*common, "unet", "--max-steps", "30", *tiny]) == 0
    ck = train.load_checkpoint(run / "unet_last.pt")
    assert ck["step"] == 30
    assert train.main([*common, "unet", "--max-steps", "50", "--resume", *tiny]) == 0
    assert train.load_checkpoint(run / "unet_last.pt")["step"] == 50
    with open(run / "unet_loss.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [25, 50]
    assert list((run / "unet_samples").glob("*.png"))

    export.main(["--run", str(run), "--out", str(out)])
    model = load(str(out))
    req = GenerationRequest(prompt="a red cube", seed=1, steps=2, width=64, height=64)
    img = model.generate(Job(request=req, mode=Mode.T2I), lambda p: None)[0].image
    assert img.size == (64, 64) and np.asarray(img).std() > 0
    assert "UNet: 50 steps" in (out / "MODEL_CARD.md").read_text()
