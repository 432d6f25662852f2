"""`mediagen train builtin` end to end on a tiny run: render, autoencoder, UNet, resume, export, load, generate."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from mediagen.families.builtin import export, load, train
from mediagen.model import Job
from mediagen.schema import GenerationRequest, Mode


def test_tiny_run_trains_resumes_exports_and_loads(tmp_path):
    run, out = tmp_path / "run", tmp_path / "weights"
    common = ["--run", str(run), "--threads", str(torch.get_num_threads())]
    assert train.main([*common, "data", "--scenes", "48", "--shard-size", "24", "--size", "64", "--heldout", "8",
                       "--captions", "2", "--prompt-share", "0.5"]) == 0
    assert len(list((run / "data" / "shards").glob("shard_*.npz"))) == 2
    assert train.main([*common, "ae", "--max-steps", "60", "--batch", "8", "--crop", "32", "--ae-channels", "8",
                       "16", "16", "--eval-images", "8", "--object-weight", "3"]) == 0
    tiny = ["--batch", "8", "--unet-channels", "16", "32", "32", "--head-dim", "16", "--captions", "2",
            "--sample-every", "60", "--no-adaptive-threads"]
    assert train.main([*common, "unet", "--max-steps", "30", "--text-layers", "6", "--position", *tiny]) == 0
    ck = train.load_checkpoint(run / "unet_last.pt")
    assert ck["step"] == 30 and ck["text_layers"] == [6]
    assert train.main([*common, "unet", "--max-steps", "50", "--resume", "--p-prompt", "0.5", "--decay-from", "30",
                       "--decay-until", "50", "--ground-weight", "0.1", "--ground-min-t", "0.3", *tiny]) == 0
    assert " grounding " in (run / "unet.log").read_text()
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
    assert "image-plane position" in (out / "MODEL_CARD.md").read_text()
    assert model.config.unet.position and model.unet.mid[1].pos.weight.abs().max() > 0  # it trained

    # start a run from that checkpoint with a middle text layer added beside the last
    src = tmp_path / "step50.pt"
    (run / "unet_last.pt").rename(src)
    assert train.main([*common, "unet", "--max-steps", "55", "--init-from", str(src), "--text-layers", "3", "6",
                       *tiny]) == 0
    ck = train.load_checkpoint(run / "unet_last.pt")
    assert (ck["step"], ck["text_layers"], ck["warm_from"]) == (55, [3, 6], 50)
    export.main(["--run", str(run), "--out", str(out)])
    model = load(str(out))
    assert model.config.text_layers == (3, 6) and model.config.unet.context_dim == 768
    assert model.generate(Job(request=req, mode=Mode.T2I), lambda p: None)[0].image.size == (64, 64)

    # and from that one with a text refiner added; its weights train
    src55 = tmp_path / "step55.pt"
    (run / "unet_last.pt").rename(src55)
    assert train.main([*common, "unet", "--max-steps", "60", "--init-from", str(src55), "--refiner-layers", "1",
                       "--refiner-dim", "32", *tiny]) == 0
    ck = train.load_checkpoint(run / "unet_last.pt")
    assert ck["step"] == 60 and ck["model"]["refiner.proj_out.weight"].abs().max() > 0
    sheet = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)  # a score run's contact sheet
    Image.fromarray(sheet).save(run / "samples_step60.png")
    export.main(["--run", str(run), "--out", str(out)])
    assert (np.asarray(Image.open(out / "samples.png")) == sheet).all()
    assert "Samples (`samples.png`)" in (out / "MODEL_CARD.md").read_text()
    model = load(str(out))
    assert (model.config.unet.refiner_layers, model.config.unet.refiner_dim) == (1, 32)
    assert "refined by 1 trainable self-attention layers (32-d" in (out / "MODEL_CARD.md").read_text()
    assert model.generate(Job(request=req, mode=Mode.T2I), lambda p: None)[0].image.size == (64, 64)

    # a new run starts from the exported folder alone: its autoencoder becomes the run's, its UNet the start
    run2 = tmp_path / "run2"
    run2.mkdir()
    (run2 / "data").symlink_to(run / "data")
    assert train.main(["--run", str(run2), "--threads", "1", "unet", "--max-steps", "3", "--init-from", str(out),
                       *tiny]) == 0
    ck = train.load_checkpoint(run2 / "unet_last.pt")
    assert (ck["step"], ck["warm_from"], ck["text_layers"]) == (3, 0, [3, 6])
    assert ck["ae_hash"] == train.state_hash(train.load_checkpoint(run2 / "ae_final.pt")["model"])
    exported = load_file(str(out / "unet.safetensors"))
    assert set(ck["model"]) == set(exported)
    moved = max((ck["model"][k] - exported[k].float()).abs().max().item() for k in exported)
    assert 0 < moved < 0.01  # three warm-up steps away from the exported weights
    # its export's card says how far it trained and carries the card of the model it began from
    assert (run2 / train.BASE_CARD).read_text() == (out / "MODEL_CARD.md").read_text()
    out2 = tmp_path / "weights2"
    export.main(["--run", str(run2), "--out", str(out2)])
    card = (out2 / "MODEL_CARD.md").read_text()
    precision = "bf16 autocast" if ck["bf16"] else "fp32"
    assert "UNet: 3 steps (about 24 samples), " in card and f"CPU ({precision}), on top of the model" in card
    started = card.split("## Started from", 1)[1]
    assert "### Training" in started and "UNet: 60 steps" in started and "\n# " not in started
    with pytest.raises(SystemExit, match="--ground-min-t 1.0: give a noise level"):
        train.main(["--run", str(tmp_path / "run3"), "unet", "--ground-min-t", "1"])
    with pytest.raises(SystemExit, match="lacks config.json"):
        train.main(["--run", str(tmp_path / "run3"), "unet", "--init-from", str(tmp_path)])


def test_widened_text_input_keeps_the_outputs():
    from mediagen.families.builtin.config import UNetConfig
    from mediagen.families.builtin.nets import UNet

    torch.manual_seed(0)
    old = UNet(UNetConfig(channels=(16, 32, 32), head_dim=16, inpaint=False))
    for p in old.parameters():  # every weight non-zero, so the text reaches the output
        p.data.normal_(0, 0.2)
    sd = train.widen_context(old.state_dict(), (6,), (3, 6))
    new = UNet(UNetConfig(channels=(16, 32, 32), head_dim=16, inpaint=False, context_dim=768, context_groups=2))
    new.load_state_dict(sd)
    x, t = torch.randn(2, 4, 16, 16), torch.tensor([0.3, 0.8])
    last, middle = torch.randn(2, 7, 384), torch.randn(2, 7, 384)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        want, got = old(x, t, last, mask), new(x, t, torch.cat([middle, last], -1), mask)
        assert want.abs().mean() > 0.1 and torch.allclose(got, want, atol=1e-4)
        trained = train.widen_context(old.state_dict(), (6,), (3, 6))
        trained["pool_proj.weight"][:, :384] = torch.randn(256, 384) * 0.1  # once the new block has weights,
        new.load_state_dict(trained)  # the middle layer counts
        assert not torch.allclose(new(x, t, torch.cat([middle, last], -1), mask), want, atol=1e-3)


def test_added_text_refiner_starts_as_the_identity_then_counts():
    from mediagen.families.builtin.config import UNetConfig
    from mediagen.families.builtin.nets import UNet

    torch.manual_seed(0)
    base = UNetConfig(channels=(16, 32, 32), head_dim=16, inpaint=False)
    old = UNet(base)
    for p in old.parameters():
        p.data.normal_(0, 0.2)
    new = UNet(train.replace(base, refiner_layers=2, refiner_dim=32))
    fresh = {k: v for k, v in new.state_dict().items() if k.startswith("refiner.")}
    assert fresh and all(k.startswith("refiner.") for k in set(new.state_dict()) - set(old.state_dict()))
    new.load_state_dict({**fresh, **old.state_dict()})
    x, t = torch.randn(2, 4, 16, 16), torch.tensor([0.3, 0.8])
    ctx, mask = torch.randn(2, 7, 384), torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        want = old(x, t, ctx, mask)
        assert want.abs().mean() > 0.1 and torch.allclose(new(x, t, ctx, mask), want, atol=1e-5)
        new.refiner.proj_out.weight.normal_(0, 0.2)
        got = new(x, t, ctx, mask)
        assert not torch.allclose(got, want, atol=1e-3)
        assert torch.allclose(new.body(x, t, *new.context(ctx, mask), mask), got)  # what samplers call
        # padding never reaches the real tokens: the first sample's 4 real tokens alone give the same output
        short = new(x[1:], t[1:], ctx[1:, :4], mask[1:, :4])
        assert torch.allclose(short, got[1:], atol=1e-5)


def test_position_features_start_at_zero_and_tell_left_from_right():
    from mediagen.families.builtin.config import UNetConfig
    from mediagen.families.builtin.nets import UNet, position_features

    f = position_features(4, 6, 5)  # (24, 20)
    assert f.shape == (24, 20)
    assert not torch.allclose(f[0], f[5])  # the top row's left and right ends
    assert torch.allclose(position_features(3, 3, 5)[4], position_features(1, 1, 5)[0])  # the centre at any size
    torch.manual_seed(0)
    base = UNetConfig(channels=(16, 32, 32), head_dim=16, inpaint=False)
    old = UNet(base)
    for p in old.parameters():
        p.data.normal_(0, 0.2)
    new = UNet(train.replace(base, position=True))
    added = set(new.state_dict()) - set(old.state_dict())
    assert added and all(k.endswith(("pos.weight", "pos.bias")) for k in added)
    new.load_state_dict({**{k: new.state_dict()[k] for k in added}, **old.state_dict()})
    x, t = torch.randn(1, 4, 16, 16), torch.tensor([0.5])
    ctx, mask = torch.randn(1, 5, 384), torch.ones(1, 5)
    with torch.no_grad():
        want = old(x, t, ctx, mask)
        assert torch.allclose(new(x, t, ctx, mask), want, atol=1e-5)  # zero-initialised: no effect yet
        new.mid[1].pos.weight.normal_(0, 0.5)
        mirrored = new(x.flip(-1), t, ctx, mask).flip(-1) - old(x.flip(-1), t, ctx, mask).flip(-1)
        direct = new(x, t, ctx, mask) - want
        assert direct.abs().mean() > 1e-3 and not torch.allclose(direct, mirrored, atol=1e-4)


def test_added_parts_options_add_and_refuse_to_change_a_refiner():
    from types import SimpleNamespace

    from mediagen.families.builtin.config import UNetConfig

    ask = SimpleNamespace(refiner_layers=2, refiner_dim=64, position=False)
    assert train.add_parts(UNetConfig(), ask).refiner_layers == 2
    plain = SimpleNamespace(refiner_layers=0, refiner_dim=64, position=False)
    assert train.add_parts(UNetConfig(), plain) == UNetConfig()
    assert train.add_parts(UNetConfig(), SimpleNamespace(**{**vars(plain), "position": True})).position
    with pytest.raises(SystemExit, match="already has a 1-layer text refiner"):
        train.add_parts(UNetConfig(refiner_layers=1), ask)


def test_prompt_share_batches_use_the_prompt_caption():
    rng = np.random.default_rng(0)
    n = 40
    prompted = np.arange(n) % 4 == 0  # every fourth scene was built from a prompt record
    caps = np.array([[f"prompt {i}" if prompted[i] else f"world {i}a", f"world {i}b"] for i in range(n)])
    ds = train.D.LatentSet(np.zeros((n, 4, 8, 8), np.float16), np.zeros((n, 8, 8), np.uint8), caps, prompted)
    got = train.make_batch(rng, ds, 64, p_uncond=0.0, p_full=1.0, p_prompt=1.0).captions
    assert all(c.startswith("prompt ") for c in got)
    got = train.make_batch(rng, ds, 400, p_uncond=0.0, p_full=1.0, p_prompt=0.0).captions
    share = np.mean([c.startswith("prompt ") for c in got])
    assert 0.05 < share < 0.2  # uniform scenes and captions: a quarter of scenes, half of their captions
    no_prompts = train.D.LatentSet(ds.latents, ds.instance, caps, np.zeros(n, bool))
    got = train.make_batch(rng, no_prompts, 400, p_uncond=0.0, p_full=1.0, p_prompt=1.0).captions
    assert len(got) == 400 and np.mean([c.startswith("prompt ") for c in got]) < 0.2  # falls back to uniform


def test_grounding_targets_name_the_right_objects():
    from mediagen.families.builtin.text import TextEncoder
    from mediagen.world.captions import spec_from_prompt_meta
    from mediagen.world.render import render_scene

    meta = {"tag": "color_attr", "prompt": "there is a red cylinder and a blue cone",
            "include": [{"class": "cylinder", "count": 1, "color": "red"},
                        {"class": "cone", "count": 1, "color": "blue"}]}
    r = render_scene(spec_from_prompt_meta(meta, np.random.default_rng(0)), 64, 64)
    inst = train.D.downsample_instance(np.asarray(r.instance).astype(np.uint8)[None], 4)  # (1, 16, 16)
    ds = train.D.LatentSet(np.zeros((1, 4, 16, 16), np.float16), inst, np.array([[meta["prompt"]]]),
                           np.ones(1, bool), np.array([json.dumps(meta)]))
    text = TextEncoder()
    caps = [meta["prompt"], "a blue cone", train.D.drop_colors(meta["prompt"])]
    b = train.Batch(torch.zeros(3), torch.zeros(3), caps, np.zeros(3, int), np.array([True, False, True]))
    tokens = text.encode(caps)[0].shape[1]
    masks, named = train.ground_targets(text.tokenizer, b, ds, tokens)
    toks = [e.tokens for e in text.tokenizer.encode_batch(caps)]
    got = {toks[0][k]: int(np.asarray(inst[0])[masks[0, k].numpy() > 0][0]) for k in range(tokens) if named[0, k]}
    assert got == {"red": 1, "cylinder": 1, "blue": 2, "cone": 2}  # instance ids follow the include order
    assert not named[1].any()  # not the scene's prompt: nothing grounded
    assert [toks[2][k] for k in range(tokens) if named[2, k]] == ["cylinder", "cone"]  # colours dropped


def test_grounding_loss_pulls_object_words_onto_their_objects():
    from mediagen.families.builtin.config import UNetConfig
    from mediagen.families.builtin.nets import UNet

    torch.manual_seed(0)
    unet = UNet(UNetConfig(channels=(16, 32, 32), head_dim=16, inpaint=False))
    x, t = torch.randn(2, 4, 16, 16), torch.tensor([0.4, 0.7])
    ctx, cmask = torch.randn(2, 5, 384), torch.ones(2, 5)
    masks, named = torch.zeros(2, 5, 16, 16), torch.zeros(2, 5, dtype=torch.bool)
    masks[0, 1, :8, :8], masks[0, 3, 8:, 8:], masks[1, 2, 4:12, :6] = 1, 1, 1
    named[0, 1] = named[0, 3] = named[1, 2] = True

    def inside() -> tuple[torch.Tensor, float]:
        maps: list[torch.Tensor] = []
        unet(x, t, ctx, cmask, maps)
        assert len(maps) == 7 and maps[0].shape == (2, 64, 5)  # every attention block from levels 1 and 2
        loss = train.ground_loss(maps, masks, named)
        share = (maps[0] * F.adaptive_avg_pool2d(masks, 8).flatten(2).transpose(1, 2)).sum(1) / maps[0].sum(1)
        return loss, share[named].mean().item()

    opt = torch.optim.Adam(unet.parameters(), lr=3e-3)
    loss0, before = inside()
    for _ in range(30):
        loss, _ = inside()
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss1, after = inside()
    assert loss1 < 0.7 * loss0 and after > before + 0.2
    assert train.ground_loss([m.detach() for m in [torch.full((2, 64, 5), 0.2)]], masks, torch.zeros_like(named)) == 0


def test_object_weighted_autoencoder_loss():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    objects = np.zeros((3, 16, 16), bool)
    objects[:, 6:9, 6:9] = True
    images[objects] = 200  # the object pixels carry a colour, so the crops can be checked against them
    crops, obj = train.random_crops(rng, images, 6, 12, objects)
    assert crops.shape == (6, 12, 12, 3) and obj.shape == (6, 12, 12)
    assert (crops[obj] == 200).all()  # the mask crops line up with the image crops
    w = train.object_weights(objects, 4.0)
    assert w.shape == (3, 1, 16, 16) and w[0, 0, 7, 7] == 5 and w[0, 0, 4, 7] == 5 and w[0, 0, 0, 0] == 1
    x = torch.zeros(3, 3, 16, 16)
    rec = x.clone()
    rec[:, :, 0, 0] = 1.0  # an error on the background only
    plain, weighted = train.ae_loss(rec, x), train.ae_loss(rec, x, w)
    d = rec - x  # unweighted: L1 + 0.5 MSE + 0.5 L1 of the image gradients' errors, plain means
    want = d.abs().mean() + 0.5 * d.square().mean() + 0.5 * (d.diff(dim=3).abs().mean() + d.diff(dim=2).abs().mean())
    assert torch.allclose(plain, want)
    assert weighted < plain  # background errors count less when objects weigh more
    rec = x.clone()
    rec[:, :, 7, 7] = 1.0  # the same error on an object
    assert train.ae_loss(rec, x, w) > train.ae_loss(rec, x)


def test_lr_decay_is_linear_to_a_tenth():
    assert train.lr_decay(5, None, None) == 1.0
    assert train.lr_decay(99, 100, 200) == 1.0
    assert abs(train.lr_decay(150, 100, 200) - 0.55) < 1e-9
    assert train.lr_decay(200, 100, 200) == train.lr_decay(10_000, 100, 200) == 0.1


def test_model_card_score_table_names_the_scorer_and_the_ceiling(tmp_path):
    """Scores from different scorers stay apart in the card, and the autoencoded ceiling gets its own row."""
    import json

    tags = {"single_object": {"accuracy": 0.5, "n": 10}, "position": {"accuracy": 0.25, "n": 10}}
    (tmp_path / "scores_step7.json").write_text(json.dumps({"overall": 0.375, "tags": tags}))
    (tmp_path / "scores_step7_abcd1234.json").write_text(json.dumps({"overall": 0.6, "tags": tags, "scorer": "abcd1234"}))
    (tmp_path / "autoencoded.json").write_text(json.dumps({"overall": 0.8, "tags": tags, "scorer": "abcd1234"}))
    rows = export.score_table(tmp_path, 7)
    body = [r for r in rows if r.startswith("| ") and not r.startswith("| UNet") and not r.startswith("| ---")]
    assert body[0].startswith("| world renders through the autoencoder (ceiling) | abcd1234 | 10 | 0.800 |")
    assert body[1].startswith("| 7 (these weights) | earlier | 10 | 0.375 | 0.50 | 0.25 |")
    assert body[2].startswith("| 7 (these weights) | abcd1234 | 10 | 0.600 |")
    assert not any("held out of training" in r for r in rows)  # no split measured: no line
    combos = {"color_attr": {"heldout_combo": {"accuracy": 0.25, "n": 4}, "seen_combos": {"accuracy": 0.5, "n": 6}}}
    (tmp_path / "scores_step7_abcd1234.json").write_text(
        json.dumps({"overall": 0.6, "tags": tags, "scorer": "abcd1234", "by_combo": combos}))
    line = export.score_table(tmp_path, 7)[-1]
    assert "color_attr 0.25 on a colour-shape pair held out of training (n=4), 0.50 on the others (n=6)" in line
    # a larger run of the same weights and scorer comes after the smaller one, and its split is the one quoted
    big = {t: {"accuracy": v["accuracy"], "n": 200} for t, v in tags.items()}
    combos200 = {"color_attr": {"heldout_combo": {"accuracy": 0.3, "n": 95},
                                "seen_combos": {"accuracy": 0.4, "n": 105}}}
    (tmp_path / "scores_step7_200.json").write_text(
        json.dumps({"overall": 0.7, "tags": big, "scorer": "abcd1234", "by_combo": combos200}))
    rows = export.score_table(tmp_path, 7)
    assert [r.split(" | ")[2] for r in rows if r.startswith("| 7 ")] == ["10", "10", "200"]
    assert "color_attr 0.30 on a colour-shape pair held out of training (n=95)" in rows[-1]
