"""The built-in family: shipped weights in every mode, the networks, masks and a short real training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mediagen.families.builtin import data as D
from mediagen.families.builtin.config import AEConfig, ModelConfig, UNetConfig
from mediagen.families.builtin.model import WEIGHT_FILES, weights_dir
from mediagen.families.builtin.nets import AutoEncoder, UNet
from mediagen.model import Job
from mediagen.schema import Extend, GenerationRequest, Mode

TINY_UNET = UNetConfig(channels=(16, 32, 32), head_dim=16)


@pytest.fixture(scope="module")
def mg(tmp_path_factory):
    """The API with the built-in model loaded once (through the registry, as the CLI does)."""
    from mediagen.api import Mediagen
    from mediagen.settings import Settings

    api = Mediagen(Settings(home=tmp_path_factory.mktemp("home")))
    api.model("builtin")
    return api


@pytest.fixture(scope="module")
def model(mg):
    return mg.model("builtin")


def _run(mg, progress=None, **kw):
    prompt = kw.pop("prompt", "a small red metal sphere left of a large blue cube")
    req = GenerationRequest(model="builtin", prompt=prompt, steps=kw.pop("steps", 3), **kw)
    return mg.generate(req, progress).outputs


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


# -- shipped weights --------------------------------------------------------------------------------------


def test_shipped_weights_are_small_safetensors_with_a_config():
    folder = weights_dir()
    for name in (*WEIGHT_FILES, "config.json", "MODEL_CARD.md"):
        assert (folder / name).is_file(), f"{name} missing from {folder}"
    total = sum((folder / n).stat().st_size for n in WEIGHT_FILES)
    assert total < 30e6
    cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text()))
    assert cfg.unet.inpaint and cfg.unet.latent_channels == cfg.ae.latent_channels


def test_capabilities(model):
    caps = model.capabilities()
    assert set(caps.modes) == {Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT}
    assert (caps.default_width, caps.default_height, caps.size_multiple) == (128, 128, 32)
    assert caps.min_size == 64 and caps.max_size == 256
    assert caps.default_sampler in caps.samplers and "euler" in caps.samplers
    assert caps.default_guidance_end == 1.0
    assert len(model.weights_hash()) == 10


def test_t2i_shape_determinism_and_progress(mg):
    steps = []
    a = _run(mg, seed=3, progress=steps.append)[0]
    b = _run(mg, seed=3)[0]
    c = _run(mg, seed=4)[0]
    assert a.image.size == (128, 128) and a.seed == 3
    assert np.array_equal(_arr(a.image), _arr(b.image))
    assert not np.array_equal(_arr(a.image), _arr(c.image))
    assert [p.step for p in steps] == [1, 2, 3] and steps[-1].steps == 3
    assert steps[-1].preview().size == (128, 128)


def test_t2i_other_sizes_and_several_items(mg):
    outs = _run(mg, seed=10, width=192, height=64, n=2, steps=2)
    assert [o.image.size for o in outs] == [(192, 64), (192, 64)] and [o.seed for o in outs] == [10, 11]
    alone = _run(mg, seed=11, width=192, height=64, steps=2)[0]
    assert np.array_equal(_arr(outs[1].image), _arr(alone.image))


def test_guidance_end_skips_guidance_on_the_last_steps(mg):
    full = _arr(_run(mg, seed=5, steps=4)[0].image)
    assert np.array_equal(full, _arr(_run(mg, seed=5, steps=4, guidance_end=1.0)[0].image))
    assert np.array_equal(full, _arr(_run(mg, seed=5, steps=4, guidance_end=0.8)[0].image))  # ceil(3.2) = 4 guided
    half = _arr(_run(mg, seed=5, steps=4, guidance_end=0.5)[0].image)
    assert not np.array_equal(full, half)
    unguided = _arr(_run(mg, seed=5, steps=4, guidance=1.0)[0].image)
    assert np.array_equal(unguided, _arr(_run(mg, seed=5, steps=4, guidance=1.0, guidance_end=0.5)[0].image))
    assert not np.array_equal(unguided, half)  # guided on its first two steps: neither image


def test_guidance_end_counts_the_steps_img2img_runs(mg):
    src = _run(mg, seed=5, steps=2)[0].image
    kw = {"seed": 6, "image": src, "strength": 0.5, "steps": 4}  # runs the last 2 of 4 steps
    half = _arr(_run(mg, guidance_end=0.5, **kw)[0].image)  # the first of those 2 guided
    assert not np.array_equal(half, _arr(_run(mg, guidance=1.0, **kw)[0].image))
    assert not np.array_equal(half, _arr(_run(mg, **kw)[0].image))


def test_t2i_rejects_sizes_off_the_grid(mg):
    from mediagen.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="multiple of 32"):
        _run(mg, seed=1, width=100, height=128, steps=2)


def test_i2i_keeps_the_layout_at_low_strength(mg):
    src = _run(mg, seed=5, steps=3)[0].image
    low = _run(mg, seed=6, image=src, strength=0.3, steps=4)[0].image
    high = _run(mg, seed=6, image=src, strength=1.0, steps=4)[0].image
    again = _run(mg, seed=6, image=src, strength=0.3, steps=4)[0].image
    assert low.size == (128, 128) and np.array_equal(_arr(low), _arr(again))
    d_low = np.abs(_arr(low).astype(int) - _arr(src)).mean()
    d_high = np.abs(_arr(high).astype(int) - _arr(src)).mean()
    assert d_low < d_high


def test_inpaint_changes_only_the_mask(mg):
    src = _run(mg, seed=7, steps=3)[0].image
    mask = np.zeros((128, 128), np.float32)
    mask[40:100, 20:80] = 1
    a = _run(mg, seed=8, image=src, mask=mask, prompt="a green cone", mask_blur=0)[0].image
    b = _run(mg, seed=8, image=src, mask=mask, prompt="a green cone", mask_blur=0)[0].image
    out, orig = _arr(a), _arr(src)
    assert a.size == src.size and np.array_equal(out, _arr(b))
    assert np.array_equal(out[mask == 0], orig[mask == 0])
    assert (out[mask == 1] != orig[mask == 1]).any()


def test_blended_inpainting_is_the_training_free_alternative(mg, model):
    src = _run(mg, seed=7, steps=3)[0].image
    mask = np.zeros((128, 128), np.float32)
    mask[40:100, 20:80] = 1
    trained = _arr(_run(mg, seed=8, image=src, mask=mask, prompt="a green cone", mask_blur=0)[0].image)
    model.inpaint_method = "blend"
    try:
        blend = _arr(_run(mg, seed=8, image=src, mask=mask, prompt="a green cone", mask_blur=0)[0].image)
    finally:
        model.inpaint_method = "trained"
    assert np.array_equal(blend[mask == 0], _arr(src)[mask == 0])
    assert (blend[mask == 1] != trained[mask == 1]).any()  # another method, another picture


def test_inpaint_of_an_odd_sized_image_only_masked(mg):
    src = Image.fromarray(np.full((300, 410, 3), 128, np.uint8))
    mask = np.zeros((300, 410), np.float32)
    mask[100:160, 150:230] = 1
    for only in (False, True):
        out = _arr(_run(mg, seed=1, image=src, mask=mask, inpaint_only_masked=only, steps=2)[0].image)
        assert out.shape == (300, 410, 3)
        assert np.array_equal(out[mask == 0], _arr(src)[mask == 0])


def test_outpaint_keeps_the_original_exactly(mg):
    src = _run(mg, seed=9, steps=3)[0].image
    out = _run(mg, seed=2, image=src, extend=Extend(left=64, top=0, right=0, bottom=32))[0]
    arr = _arr(out.image)
    assert out.image.size == (192, 160)
    assert np.array_equal(arr[0:128, 64:192], _arr(src))
    # the gradient blend (the default) carries the original's colours across the seam; the feather leaves
    # the decoder's offset a few pixels in
    feather = _arr(_run(mg, seed=2, image=src, extend=Extend(left=64, top=0, right=0, bottom=32),
                        mask_blend="feather")[0].image)

    def offset(img: np.ndarray, k: int) -> float:  # k pixels left of the seam, against the first column kept
        return float(np.median(np.abs(img[:128, 64 - k].astype(int) - _arr(src)[:, 0]).sum(-1)))

    assert max(offset(arr, k) for k in range(1, 5)) <= 2
    assert offset(feather, 4) >= offset(arr, 4) + 3


def test_generate_called_directly_handles_every_mode(model):
    """Without the API in front: outpainting goes through the same canvas + composite step."""
    src = Image.fromarray(np.full((96, 128, 3), 90, np.uint8))
    req = GenerationRequest(prompt="a red cube", seed=1, steps=2, image=src, extend=Extend(right=32))
    out = model.generate(Job(request=req, mode=Mode.OUTPAINT, image=src), lambda p: None)[0].image
    assert out.size == (160, 96) and np.array_equal(_arr(out)[:, :128], _arr(src))
    mask = np.zeros((96, 128), np.float32)
    mask[10:50, 10:50] = 1
    req = GenerationRequest(prompt="a red cube", seed=1, steps=2, image=src, mask=mask)
    out = model.generate(Job(request=req, mode=Mode.INPAINT, image=src, mask=mask), lambda p: None)[0].image
    assert out.size == (128, 96)


# -- networks, masks, data ------------------------------------------------------------------------------


def test_networks_shapes():
    ae = AutoEncoder(AEConfig(channels=(8, 16, 16), latent_channels=4))
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 4, 16, 24) and ae.decode(z).shape == x.shape
    unet = UNet(TINY_UNET)
    v = unet(torch.randn(2, 9, 16, 24), torch.rand(2), torch.randn(2, 5, 384), torch.tensor([[1] * 5, [1, 1, 0, 0, 0]]))
    assert v.shape == (2, 4, 16, 24)


def test_padding_tokens_are_ignored():
    torch.manual_seed(0)
    unet = UNet(TINY_UNET)
    for p in unet.parameters():  # zero-initialised outputs would hide the text path
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(1, 9, 16, 16), torch.rand(1)
    ctx = torch.randn(1, 3, 384)
    padded = torch.cat([ctx, torch.randn(1, 4, 384)], dim=1)
    a = unet(x, t, ctx * 1, torch.ones(1, 3))
    b = unet(x, t, padded, torch.tensor([[1, 1, 1, 0, 0, 0, 0]]))
    assert torch.allclose(a, b, atol=1e-4)


def test_random_masks_cover_every_kind():
    rng = np.random.default_rng(0)
    inst = np.zeros((32, 32), np.uint8)
    inst[10:14, 20:26] = 2
    masks = [D.random_mask(rng, inst) for _ in range(200)]
    assert all(m.shape == (32, 32) and set(np.unique(m)) <= {0.0, 1.0} and m.sum() > 0 for m in masks)
    full = sum(bool(m.all()) for m in masks)
    assert 60 < full < 140  # about half regenerate everything (text-to-image)
    assert any(not m.all() and m[:, 0].all() for m in masks)  # an outpainting border on the left


def test_downsample_instance_keeps_small_objects():
    inst = np.zeros((1, 16, 16), np.uint8)
    inst[0, 5, 5] = 3  # one pixel
    inst[0, 8:16, 8:16] = 1
    out = D.downsample_instance(inst, 4)
    assert out.shape == (1, 4, 4) and out[0, 1, 1] == 3 and (out[0, 2:, 2:] == 1).all() and out[0, 0, 0] == 0


def test_training_steps_lower_the_loss():
    from mediagen.families.builtin.train import flow_loss

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = np.stack([D.render_one(i, 64, 1)[0] for i in range(4)])  # real world renders
    x0 = torch.from_numpy(images).permute(0, 3, 1, 2).float()[:, :, ::4, ::4] / 127.5 - 1  # (4, 3, 16, 16)
    x0 = torch.cat([x0, x0[:, :1]], dim=1)  # 4 channels, like a latent
    unet = UNet(TINY_UNET)
    masks = torch.from_numpy(np.stack([D.random_mask(rng, np.zeros((16, 16), np.uint8)) for _ in range(4)]))[:, None]
    extra = torch.cat([masks, x0 * (1 - masks)], dim=1)
    ctx, ctx_mask = torch.randn(4, 6, 384), torch.ones(4, 6)
    t, noise = torch.rand(4), torch.randn_like(x0)
    opt = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    before = flow_loss(unet, x0, extra, ctx, ctx_mask, t, noise).item()
    for _ in range(15):
        loss = flow_loss(unet, x0, extra, ctx, ctx_mask, t, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert flow_loss(unet, x0, extra, ctx, ctx_mask, t, noise).item() < 0.8 * before


def test_text_encoder_matches_transformers_bert():
    from transformers import AutoModel, AutoTokenizer

    from mediagen.families.builtin.text import TextEncoder, minilm_path

    texts = ["a small red metal sphere left of a large blue cube", "", "Two green cones behind a cube. " * 12]
    te = TextEncoder(max_tokens=64)
    ids, mask = te.tokenize(texts)
    path = str(minilm_path())
    enc = AutoTokenizer.from_pretrained(path)(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    assert torch.equal(ids, enc["input_ids"]) and torch.equal(mask, enc["attention_mask"]) and ids.shape[1] == 64
    with torch.no_grad():
        ref = AutoModel.from_pretrained(path).eval()(**enc).last_hidden_state * enc["attention_mask"][..., None]
    states, _ = te.encode(texts)
    assert torch.allclose(states, ref, atol=1e-4)
    swapped, _ = te.encode(["a red cube left of a blue sphere", "a blue cube left of a red sphere"])
    assert (swapped[0] - swapped[1]).abs().max() > 0.1  # token states tell attribute swaps apart
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(path).eval()(**enc, output_hidden_states=True).hidden_states
    both, _ = TextEncoder(max_tokens=64, layers=(3, 6)).encode(texts)  # (B, M, 768): layer 3, then the last
    assert both.shape[-1] == 768 and torch.allclose(both[..., 384:], ref, atol=1e-4)
    assert torch.allclose(both[..., :384], hidden[3] * enc["attention_mask"][..., None], atol=1e-4)


def test_drop_colors_keeps_the_caption_true():
    assert D.drop_colors("An orange cube left of a red metal sphere under a blue sky.") == \
        "A cube left of a metal sphere under a blue sky."
    assert D.drop_colors("two white cylinders with red stripes against a blue-gray wall") == \
        "two cylinders with stripes against a blue-gray wall"


def test_prompt_scenes_hold_what_their_prompt_names():
    from mediagen.world.captions import check_meta
    from mediagen.world.render import render_scene
    from mediagen.world.spec import SceneSpec
    from mediagen.world.splits import allowed_in_train, has_heldout_text

    seeds = [s for s in range(40) if np.random.default_rng([s, 1]).random() < 0.5][:6]
    for seed in seeds:
        image, inst, spec, caps, meta = D.render_one(seed, 64, 3, prompt_share=0.5)
        scene = SceneSpec.from_dict(spec)
        assert image.shape == (64, 64, 3) and len(caps) == 3
        assert not any(has_heldout_text(c) for c in caps) and all(allowed_in_train(o) for o in scene.objects)
        assert caps[0] == meta["prompt"] and check_meta(meta, render_scene(scene, 128, 128)), caps[0]
    assert D.render_one(seeds[0], 64, 3)[4] is None
