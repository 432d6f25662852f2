"""LoRA in diffusers/PEFT and kohya layouts: matching, several at once, reporting, exact unloading."""

from __future__ import annotations

import importlib
import pickle
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mediagen.errors import RequestError, UnsafeWeightsError
from mediagen.lora import LoraSet
from mediagen.model import Job
from mediagen.schema import GenerationRequest, Lora, Mode

pytestmark = pytest.mark.usefixtures("one_thread")

RANK = 4


def load(family, files):
    return importlib.import_module(f"mediagen.families.{family}").load(str(files["folder"]), device="cpu",
                                                                        dtype=torch.float32)


@pytest.fixture(scope="module")
def sd15(sd15_files):
    return load("sd15", sd15_files)


@pytest.fixture(scope="module")
def sdxl(sdxl_files):
    return load("sdxl", sdxl_files)


@pytest.fixture(scope="module")
def flux(flux_files):
    return load("flux", flux_files)


def weight_of(root: torch.nn.Module, name: str) -> torch.Tensor:
    return root.get_submodule(name).weight


def low_rank(module: torch.nn.Module, seed: int, scale: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (down, up) for a Linear or Conv2d, shaped like real LoRA files (1x1 up for convs)."""
    g = torch.Generator().manual_seed(seed)
    w = module.weight
    if w.ndim == 4:
        down = torch.randn(RANK, w.shape[1], *w.shape[2:], generator=g) * scale
        up = torch.randn(w.shape[0], RANK, 1, 1, generator=g) * scale
    else:
        down = torch.randn(RANK, w.shape[1], generator=g) * scale
        up = torch.randn(w.shape[0], RANK, generator=g) * scale
    return down, up


def write(tmp_path, name: str, tensors: dict) -> str:
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return str(path)


def snapshot(model) -> dict:
    return {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in model.lora_targets().items()}


def same_as(model, snap) -> bool:
    return all(torch.equal(v, model.lora_targets()[n].state_dict()[k]) for n, sd in snap.items() for k, v in sd.items())


def generate(model, loras=(), seed=3):
    req = GenerationRequest(prompt="a small house", seed=seed, steps=2, width=64, height=64,
                            loras=[Lora(path=p, weight=w) for p, w in loras])
    return np.asarray(model.generate(Job(request=req, mode=Mode.T2I), lambda p: None)[0].image)


SD15_UNET = ["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
             "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
             "up_blocks.0.attentions.1.proj_in",
             "down_blocks.0.resnets.0.conv1",
             "mid_block.attentions.0.transformer_blocks.0.ff.net.2"]
SD15_TE = ["encoder.layers.0.self_attn.q_proj", "encoder.layers.1.mlp.fc1"]


def diffusers_lora(model, seed=0) -> dict:
    out = {}
    for i, name in enumerate(SD15_UNET):
        down, up = low_rank(model.base.unet.get_submodule(name), seed + i)
        out[f"unet.{name}.lora_A.weight"], out[f"unet.{name}.lora_B.weight"] = down, up
    for i, name in enumerate(SD15_TE):
        down, up = low_rank(model.base.text_encoder.get_submodule(name), seed + 100 + i)
        out[f"text_encoder.text_model.{name}.lora_A.weight"], out[f"text_encoder.text_model.{name}.lora_B.weight"] = (
            down, up)
    return out


def kohya_lora(model, seed=0, alpha=2.0) -> dict:
    out = {}
    for i, name in enumerate(SD15_UNET):
        down, up = low_rank(model.base.unet.get_submodule(name), seed + i)
        k = "lora_unet_" + name.replace(".", "_")
        out[k + ".lora_down.weight"], out[k + ".lora_up.weight"], out[k + ".alpha"] = down, up, torch.tensor(alpha)
    for i, name in enumerate(SD15_TE):
        down, up = low_rank(model.base.text_encoder.get_submodule(name), seed + 100 + i)
        k = "lora_te_text_model_" + name.replace(".", "_")
        out[k + ".lora_down.weight"], out[k + ".lora_up.weight"], out[k + ".alpha"] = down, up, torch.tensor(alpha)
    return out


@pytest.mark.parametrize("fmt", ["diffusers", "kohya"])
def test_lora_changes_output_and_unload_restores_bitexact(sd15, tmp_path, fmt):
    tensors = diffusers_lora(sd15) if fmt == "diffusers" else kohya_lora(sd15)
    path = write(tmp_path, f"{fmt}.safetensors", tensors)
    before, snap = generate(sd15), snapshot(sd15)
    with_lora = generate(sd15, [(path, 1.0)])
    assert not np.array_equal(before, with_lora)
    assert not same_as(sd15, snap)
    report = sd15._loras.reports[0]
    assert len(report.matched) == len(SD15_UNET) + len(SD15_TE) and report.unmatched == []
    after = generate(sd15)
    assert same_as(sd15, snap) and np.array_equal(before, after)


def test_merge_math_matches_definition(sd15, tmp_path):
    """W' = W + weight * alpha / rank * up @ down, for linear and 3x3 conv layers."""
    path = write(tmp_path, "k.safetensors", kohya_lora(sd15, alpha=2.0))
    targets = sd15.lora_targets()
    names = ["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", "down_blocks.0.resnets.0.conv1"]
    originals = {n: weight_of(targets["unet"], n).detach().clone() for n in names}
    lora_set = LoraSet.apply(targets, [(path, 0.7)], unet_config=dict(sd15.base.unet.config))
    try:
        for i, n in enumerate([SD15_UNET[0], SD15_UNET[3]]):
            down, up = low_rank(sd15.base.unet.get_submodule(n), SD15_UNET.index(n))
            delta = (up.flatten(1) @ down.flatten(1)).reshape(originals[n].shape) * 0.7 * 2.0 / RANK
            torch.testing.assert_close(weight_of(targets["unet"], n), originals[n] + delta)
    finally:
        lora_set.restore()
    assert all(torch.equal(weight_of(targets["unet"], n), originals[n]) for n in names)


def test_kohya_and_diffusers_agree_with_diffusers_own_loader(sd15_files, sd15, tmp_path):
    """diffusers' PEFT loader, fused, gives the same UNet weights as our merge (same file)."""
    from diffusers import StableDiffusionPipeline

    tensors = {k: v for k, v in kohya_lora(sd15, alpha=2.0).items() if k.startswith("lora_unet_")}
    path = write(tmp_path, "unet-only.safetensors", tensors)
    ref = StableDiffusionPipeline.from_pretrained(str(sd15_files["folder"]), safety_checker=None,
                                                  requires_safety_checker=False, use_safetensors=True)
    ref.load_lora_weights(path, adapter_name="x")
    ref.fuse_lora(lora_scale=0.8, adapter_names=["x"])
    ref.unload_lora_weights()
    lora_set = LoraSet.apply(sd15.lora_targets(), [(path, 0.8)], unet_config=dict(sd15.base.unet.config))
    try:
        ours, theirs = sd15.base.unet.state_dict(), ref.unet.state_dict()
        for k in ours:
            torch.testing.assert_close(ours[k], theirs[k], rtol=1e-5, atol=1e-6, msg=k)
    finally:
        lora_set.restore()


def test_several_loras_with_weights(sd15, tmp_path):
    a = write(tmp_path, "a.safetensors", diffusers_lora(sd15, seed=0))
    snap = snapshot(sd15)
    base = generate(sd15)
    # the same LoRA at +1 and -1 cancels exactly
    assert np.array_equal(generate(sd15, [(a, 1.0), (a, -1.0)]), base)
    half_twice = LoraSet.apply(sd15.lora_targets(), [(a, 0.5), (a, 0.5)], unet_config=dict(sd15.base.unet.config))
    w_half = {k: v.clone() for k, v in sd15.base.unet.state_dict().items()}
    half_twice.restore()
    once = LoraSet.apply(sd15.lora_targets(), [(a, 1.0)], unet_config=dict(sd15.base.unet.config))
    for k, v in sd15.base.unet.state_dict().items():
        torch.testing.assert_close(v, w_half[k])
    once.restore()
    b = write(tmp_path, "b.safetensors", kohya_lora(sd15, seed=50))
    both = generate(sd15, [(a, 0.8), (b, 0.5)])
    assert not np.array_equal(both, generate(sd15, [(a, 0.8)]))
    generate(sd15)
    assert same_as(sd15, snap)


def test_unmatched_layers_are_reported(sd15, tmp_path):
    tensors = diffusers_lora(sd15)
    tensors["unet.down_blocks.9.attentions.0.nothing.lora_A.weight"] = torch.zeros(RANK, 8)
    tensors["unet.down_blocks.9.attentions.0.nothing.lora_B.weight"] = torch.zeros(8, RANK)
    tensors["emb_params"] = torch.zeros(3, 32)
    path = write(tmp_path, "partial.safetensors", tensors)
    with pytest.warns(UserWarning, match=r"applied 7 of 9 layers; unmatched: emb_params.*nothing"):
        lora_set = LoraSet.apply(sd15.lora_targets(), [(path, 1.0)], unet_config=dict(sd15.base.unet.config))
    lora_set.restore()
    report = lora_set.reports[0]
    assert len(report.matched) == 7 and len(report.unmatched) == 2


def test_lora_for_another_family_is_refused(sd15, sdxl, tmp_path):
    name = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"  # SDXL's is wider (cross dim 72)
    down, up = low_rank(sdxl.base.unet.get_submodule(name), 0)
    path = write(tmp_path, "xl.safetensors", {f"unet.{name}.lora_A.weight": down, f"unet.{name}.lora_B.weight": up})
    snap = snapshot(sd15)
    with pytest.raises(RequestError, match="another model family"):
        generate(sd15, [(path, 1.0)])
    assert same_as(sd15, snap)
    bogus = write(tmp_path, "bogus.safetensors", {"lora_unet_nowhere.lora_down.weight": torch.zeros(RANK, 4),
                                                  "lora_unet_nowhere.lora_up.weight": torch.zeros(4, RANK)})
    with pytest.raises(RequestError, match="lora_unet_nowhere"):
        LoraSet.apply(sd15.lora_targets(), [(bogus, 1.0)], unet_config=dict(sd15.base.unet.config))


def test_pickle_lora_refused(sd15, tmp_path):
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": 1}, protocol=4))
    with pytest.raises(UnsafeWeightsError):
        LoraSet.apply(sd15.lora_targets(), [(str(path), 1.0)])


def test_sdxl_kohya_ldm_names(sdxl, tmp_path):
    """kohya SDXL LoRAs use the original (SGM) UNet names and lora_te1_/lora_te2_ for the two encoders."""
    pairs = {
        "input_blocks_4_1_transformer_blocks_0_attn1_to_q": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
        "output_blocks_1_1_proj_out": "up_blocks.0.attentions.1.proj_out",
        "middle_block_1_transformer_blocks_1_attn2_to_v": "mid_block.attentions.0.transformer_blocks.1.attn2.to_v",
        "input_blocks_1_0_in_layers_2": "down_blocks.0.resnets.0.conv1",
        "output_blocks_2_2_conv": "up_blocks.0.upsamplers.0.conv",
    }
    tensors = {}
    for i, (ldm, diff) in enumerate(pairs.items()):
        down, up = low_rank(sdxl.base.unet.get_submodule(diff), i)
        tensors[f"lora_unet_{ldm}.lora_down.weight"], tensors[f"lora_unet_{ldm}.lora_up.weight"] = down, up
    for j, (prefix, enc) in enumerate((("lora_te1_", sdxl.base.text_encoder), ("lora_te2_", sdxl.base.text_encoder_2))):
        mod = enc.get_submodule("encoder.layers.0.self_attn.k_proj" if prefix == "lora_te1_"
                                else "text_model.encoder.layers.0.self_attn.k_proj")
        down, up = low_rank(mod, 10 + j)
        k = prefix + "text_model_encoder_layers_0_self_attn_k_proj"
        tensors[k + ".lora_down.weight"], tensors[k + ".lora_up.weight"] = down, up
    path = write(tmp_path, "xl-kohya.safetensors", tensors)
    before = {d: weight_of(sdxl.base.unet, d).detach().clone() for d in pairs.values()}
    lora_set = LoraSet.apply(sdxl.lora_targets(), [(path, 1.0)], unet_config=dict(sdxl.base.unet.config))
    try:
        assert lora_set.reports[0].unmatched == [] and len(lora_set.reports[0].matched) == 7
        for i, diff in enumerate(pairs.values()):
            down, up = low_rank(sdxl.base.unet.get_submodule(diff), i)
            delta = (up.flatten(1) @ down.flatten(1)).reshape(before[diff].shape)
            torch.testing.assert_close(weight_of(sdxl.base.unet, diff), before[diff] + delta)
    finally:
        lora_set.restore()
    assert all(torch.equal(weight_of(sdxl.base.unet, d), w) for d, w in before.items())


def test_flux_lora_diffusers_and_bfl_names(flux, tmp_path):
    """FLUX LoRAs in diffusers names, and in BFL names whose fused qkv / linear1 updates are split by rows."""
    tr = flux.base.transformer
    inner = tr.config.num_attention_heads * tr.config.attention_head_dim
    g = torch.Generator().manual_seed(0)
    qkv_down, qkv_up = torch.randn(RANK, inner, generator=g), torch.randn(3 * inner, RANK, generator=g)
    lin1_out = 3 * inner + int(inner * 4.0)
    l1_down, l1_up = torch.randn(RANK, inner, generator=g), torch.randn(lin1_out, RANK, generator=g)
    ff_down, ff_up = low_rank(tr.get_submodule("transformer_blocks.0.ff.net.2"), 5)
    tensors = {
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": qkv_down,
        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": qkv_up,
        "diffusion_model.single_blocks.0.linear1.lora_A.weight": l1_down,
        "diffusion_model.single_blocks.0.linear1.lora_B.weight": l1_up,
        "transformer.transformer_blocks.0.ff.net.2.lora_A.weight": ff_down,
        "transformer.transformer_blocks.0.ff.net.2.lora_B.weight": ff_up,
    }
    path = write(tmp_path, "flux.safetensors", tensors)
    names = ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_v",
             "single_transformer_blocks.0.attn.to_k", "single_transformer_blocks.0.proj_mlp",
             "transformer_blocks.0.ff.net.2"]
    before = {n: weight_of(tr, n).detach().clone() for n in names}
    base = generate(flux)
    changed = generate(flux, [(path, 1.0)])
    assert not np.array_equal(base, changed) and flux._loras.reports[0].unmatched == []
    qkv, lin1 = qkv_up @ qkv_down, l1_up @ l1_down
    torch.testing.assert_close(weight_of(tr, names[0]), before[names[0]] + qkv[:inner])
    torch.testing.assert_close(weight_of(tr, names[1]), before[names[1]] + qkv[2 * inner:])
    torch.testing.assert_close(weight_of(tr, names[2]), before[names[2]] + lin1[inner:2 * inner])
    torch.testing.assert_close(weight_of(tr, names[3]), before[names[3]] + lin1[3 * inner:])
    torch.testing.assert_close(weight_of(tr, names[4]), before[names[4]] + ff_up @ ff_down)
    assert np.array_equal(generate(flux), base)
    assert all(torch.equal(weight_of(tr, n), w) for n, w in before.items())


def test_no_warning_when_everything_matches(sd15, tmp_path):
    path = write(tmp_path, "ok.safetensors", diffusers_lora(sd15))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LoraSet.apply(sd15.lora_targets(), [(path, 1.0)], unet_config=dict(sd15.base.unet.config)).restore()
