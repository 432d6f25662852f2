"""Tiny random SD 1.5, SDXL, SD3 and FLUX.1 models saved in their real on-disk layouts (built once per session)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.!:'-"


# -- tokenizers and text encoders ------------------------------------------------------------------------------
def clip_tokenizer(pad: str = "<|endoftext|>"):
    """A character-level CLIP BPE tokenizer (no merges) with the real special tokens."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in CHARS:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], pad_token=pad, model_max_length=77)


def t5_tokenizer():
    """A character-level unigram T5 tokenizer."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(ch, -2.0) for ch in CHARS] + [("\u2581" + ch, -1.5) for ch in CHARS]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def clip_encoder(hidden: int, seed: int, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    cfg = CLIPTextConfig(hidden_size=hidden, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                         vocab_size=128, max_position_embeddings=77, projection_dim=32, hidden_act="gelu",
                         bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()


def t5_encoder(d_model: int, seed: int):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=128, d_model=d_model, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(cfg).eval()


def tiny_vae(seed: int, latent_channels: int = 4, **kw):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=latent_channels,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         sample_size=64, **kw).eval()


def sd_scheduler():
    from diffusers import PNDMScheduler

    return PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                         steps_offset=1, set_alpha_to_one=False)


# -- pipelines -------------------------------------------------------------------------------------------------
def build_sd15():
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4,
    ).eval()
    return StableDiffusionPipeline(vae=tiny_vae(1), text_encoder=clip_encoder(32, 2), tokenizer=clip_tokenizer(),
                                   unet=unet, scheduler=sd_scheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def build_sdxl():
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    # the two encoders differ in width (as CLIP-L and OpenCLIP-bigG do) so single files can tell them apart
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=72,
    ).eval()
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=tiny_vae(1), text_encoder=clip_encoder(32, 2),
                                     text_encoder_2=clip_encoder(40, 3, projection=True), tokenizer=clip_tokenizer(),
                                     tokenizer_2=clip_tokenizer(pad="!"), unet=unet, scheduler=sched)


def build_sd3():
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    # 16 latent channels as in SD3 (its inpaint pipeline insists on them)
    transformer = SD3Transformer2DModel(sample_size=32, patch_size=1, in_channels=16, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=64, pooled_projection_dim=64, out_channels=16).eval()
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=tiny_vae(1, latent_channels=16, shift_factor=0.0609, scaling_factor=1.5305),
        text_encoder=clip_encoder(32, 2, projection=True), tokenizer=clip_tokenizer(),
        text_encoder_2=clip_encoder(32, 3, projection=True), tokenizer_2=clip_tokenizer(pad="!"),
        text_encoder_3=t5_encoder(64, 4), tokenizer_3=t5_tokenizer(),
    )


def build_flux():
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
                                         guidance_embeds=True).eval()
    sched = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                            base_image_seq_len=256, max_image_seq_len=4096)
    return FluxPipeline(scheduler=sched, vae=tiny_vae(1, use_quant_conv=False, use_post_quant_conv=False,
                                                      shift_factor=0.1159, scaling_factor=0.3611),
                        text_encoder=clip_encoder(32, 2), tokenizer=clip_tokenizer(),
                        text_encoder_2=t5_encoder(32, 4), tokenizer_2=t5_tokenizer(), transformer=transformer)


# -- original (single-file) layouts ----------------------------------------------------------------------------
def vae_to_ldm(sd: dict, n_blocks: int) -> dict:
    """diffusers AutoencoderKL state dict -> original LDM names (attention projections as 1x1 convs)."""
    out = {}
    for k, v in sd.items():
        n = k.replace("conv_norm_out", "norm_out")
        n = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)", r"encoder.down.\1.block.\2", n)
        n = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0", r"encoder.down.\1.downsample", n)
        n = re.sub(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)",
                   lambda m: f"decoder.up.{n_blocks - 1 - int(m[1])}.block.{m[2]}", n)
        n = re.sub(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0",
                   lambda m: f"decoder.up.{n_blocks - 1 - int(m[1])}.upsample", n)
        n = re.sub(r"mid_block\.resnets\.(\d+)", lambda m: f"mid.block_{int(m[1]) + 1}", n)
        if "mid_block.attentions.0" in n:
            n = n.replace("mid_block.attentions.0", "mid.attn_1")
            for a, b in (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")):
                n = n.replace(f".{a}.", f".{b}.")
            if v.ndim == 2:
                v = v[:, :, None, None]
        n = n.replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + n] = v
    return out


def unet_to_ldm(unet) -> dict:
    from mediagen.families.diffusers_common import unet_name_to_ldm

    cfg = dict(unet.config)
    return {"model.diffusion_model." + unet_name_to_ldm(k, cfg): v for k, v in unet.state_dict().items()}


def clip_to_ldm(encoder, prefix: str) -> dict:
    """HF CLIP text encoder -> the hub checkpoints' 'PREFIX.text_model.*' names (transformers 5 drops 'text_model.')."""
    out = {}
    for k, v in encoder.state_dict().items():
        k = k if k.startswith(("text_model.", "text_projection")) else "text_model." + k
        out[prefix + k] = v
    return out


def clip_to_openclip(encoder, prefix: str) -> dict:
    """HF CLIPTextModelWithProjection -> OpenCLIP names (fused in_proj, transposed text_projection)."""
    sd = {k.removeprefix("text_model."): v for k, v in encoder.state_dict().items()}
    out = {
        prefix + "token_embedding.weight": sd["embeddings.token_embedding.weight"],
        prefix + "positional_embedding": sd["embeddings.position_embedding.weight"],
        prefix + "ln_final.weight": sd["final_layer_norm.weight"],
        prefix + "ln_final.bias": sd["final_layer_norm.bias"],
        prefix + "text_projection": sd["text_projection.weight"].T.contiguous(),
    }
    for i in range(encoder.config.num_hidden_layers):
        a, b = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for p in ("weight", "bias"):
            out[b + f"attn.in_proj_{p}"] = torch.cat([sd[a + f"self_attn.{x}_proj.{p}"] for x in "qkv"])
            out[b + f"attn.out_proj.{p}"] = sd[a + f"self_attn.out_proj.{p}"]
            out[b + f"ln_1.{p}"] = sd[a + f"layer_norm1.{p}"]
            out[b + f"ln_2.{p}"] = sd[a + f"layer_norm2.{p}"]
            out[b + f"mlp.c_fc.{p}"] = sd[a + f"mlp.fc1.{p}"]
            out[b + f"mlp.c_proj.{p}"] = sd[a + f"mlp.fc2.{p}"]
    return out


def flux_to_original(transformer) -> dict:
    """diffusers FluxTransformer2DModel -> BFL names (fused qkv / linear1, shift-scale final modulation)."""
    from mediagen.families.flux.convert import SWAP, flux_module_map, swap_halves

    sd = transformer.state_dict()
    out = {}
    for orig, pieces in flux_module_map(dict(transformer.config)).items():
        for param in ("weight", "bias"):
            parts = [sd.get(f"{p.name}.{param}") for p in pieces]
            if any(t is None for t in parts):
                continue
            t = torch.cat(parts)
            if pieces[0].transform == SWAP:
                t = swap_halves(t)
            name = "scale" if orig.endswith(("query_norm", "key_norm")) else param
            out[f"{orig}.{name}"] = t
    return out


def sd3_to_original(transformer) -> dict:
    """diffusers SD3Transformer2DModel -> original MMDiT names (fused qkv, shift-scale final modulations)."""
    from mediagen.families.flux.convert import swap_halves

    sd = transformer.state_dict()
    out = {"pos_embed": sd["pos_embed.pos_embed"]}
    top = {"x_embedder.proj": "pos_embed.proj", "t_embedder.mlp.0": "time_text_embed.timestep_embedder.linear_1",
           "t_embedder.mlp.2": "time_text_embed.timestep_embedder.linear_2",
           "y_embedder.mlp.0": "time_text_embed.text_embedder.linear_1",
           "y_embedder.mlp.2": "time_text_embed.text_embedder.linear_2", "context_embedder": "context_embedder",
           "final_layer.linear": "proj_out"}
    last = transformer.config.num_layers - 1
    for p in ("weight", "bias"):
        for orig, new in top.items():
            out[f"{orig}.{p}"] = sd[f"{new}.{p}"]
        out[f"final_layer.adaLN_modulation.1.{p}"] = swap_halves(sd[f"norm_out.linear.{p}"])
        for i in range(last + 1):
            x, c, d = f"joint_blocks.{i}.x_block.", f"joint_blocks.{i}.context_block.", f"transformer_blocks.{i}."
            out[x + f"attn.qkv.{p}"] = torch.cat([sd[d + f"attn.to_{q}.{p}"] for q in "qkv"])
            out[c + f"attn.qkv.{p}"] = torch.cat([sd[d + f"attn.add_{q}_proj.{p}"] for q in "qkv"])
            out[x + f"attn.proj.{p}"] = sd[d + f"attn.to_out.0.{p}"]
            out[x + f"adaLN_modulation.1.{p}"] = sd[d + f"norm1.linear.{p}"]
            out[x + f"mlp.fc1.{p}"] = sd[d + f"ff.net.0.proj.{p}"]
            out[x + f"mlp.fc2.{p}"] = sd[d + f"ff.net.2.{p}"]
            if i < last:
                out[c + f"attn.proj.{p}"] = sd[d + f"attn.to_add_out.{p}"]
                out[c + f"adaLN_modulation.1.{p}"] = sd[d + f"norm1_context.linear.{p}"]
                out[c + f"mlp.fc1.{p}"] = sd[d + f"ff_context.net.0.proj.{p}"]
                out[c + f"mlp.fc2.{p}"] = sd[d + f"ff_context.net.2.{p}"]
            else:
                out[c + f"adaLN_modulation.1.{p}"] = swap_halves(sd[d + f"norm1_context.linear.{p}"])
    return out


def check_roundtrip(converted: dict, reference: dict, what: str) -> None:
    """The original-layout export converts back to exactly the diffusers tensors (diffusers' own converters)."""
    ref = {k: v for k, v in reference.items() if not k.endswith("position_ids")}
    assert set(converted) == set(ref), f"{what}: keys differ: {sorted(set(converted) ^ set(ref))[:6]}"
    for k, v in ref.items():
        assert torch.equal(converted[k].reshape(v.shape), v), f"{what}: {k} differs"


def save_single_sd(pipe, path: Path, xl: bool) -> None:
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )
    from safetensors.torch import save_file

    state = {**unet_to_ldm(pipe.unet), **vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.block_out_channels))}
    if xl:
        state.update(clip_to_ldm(pipe.text_encoder, "conditioner.embedders.0.transformer."))
        state.update(clip_to_openclip(pipe.text_encoder_2, "conditioner.embedders.1.model."))
        te2 = convert_open_clip_checkpoint(pipe.text_encoder_2, state, prefix="conditioner.embedders.1.model.")
        check_roundtrip(te2, pipe.text_encoder_2.state_dict(), "text_encoder_2")
    else:
        state.update(clip_to_ldm(pipe.text_encoder, "cond_stage_model.transformer."))
    check_roundtrip(convert_ldm_unet_checkpoint(dict(state), dict(pipe.unet.config)), pipe.unet.state_dict(), "unet")
    check_roundtrip(convert_ldm_vae_checkpoint(dict(state), dict(pipe.vae.config)), pipe.vae.state_dict(), "vae")
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def config_only_copy(folder: Path, dest: Path, keep_weights_of: tuple[str, ...] = ()) -> Path:
    """A copy of a diffusers folder without weights (except the named components): configs and tokenizers."""
    def ignore(d: str, names: list[str]) -> list[str]:
        if Path(d).name in keep_weights_of:
            return []
        return [n for n in names if n.endswith(".safetensors")]

    shutil.copytree(folder, dest, ignore=ignore)
    return dest


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def sd15_files(tiny_root) -> dict:
    pipe = build_sd15()
    folder = tiny_root / "sd15"
    pipe.save_pretrained(folder, safe_serialization=True)
    single = tiny_root / "sd15-single.safetensors"
    save_single_sd(pipe, single, xl=False)
    config = config_only_copy(folder, tiny_root / "sd15-config")
    return {"folder": folder, "file": single, "config": config, "pipe": pipe}


@pytest.fixture(scope="session")
def sdxl_files(tiny_root) -> dict:
    pipe = build_sdxl()
    folder = tiny_root / "sdxl"
    pipe.save_pretrained(folder, safe_serialization=True)
    single = tiny_root / "sdxl-single.safetensors"
    save_single_sd(pipe, single, xl=True)
    config = config_only_copy(folder, tiny_root / "sdxl-config")
    return {"folder": folder, "file": single, "config": config, "pipe": pipe}


@pytest.fixture(scope="session")
def sd3_files(tiny_root) -> dict:
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers
    from safetensors.torch import save_file

    pipe = build_sd3()
    folder = tiny_root / "sd3"
    pipe.save_pretrained(folder, safe_serialization=True)
    original = sd3_to_original(pipe.transformer)
    check_roundtrip(convert_sd3_transformer_checkpoint_to_diffusers(dict(original)), pipe.transformer.state_dict(),
                    "sd3 transformer")
    single = tiny_root / "sd3-single.safetensors"  # the MMDiT alone, as SD3.5 releases ship it
    save_file({"model.diffusion_model." + k: v.contiguous() for k, v in original.items()}, str(single))
    config = config_only_copy(folder, tiny_root / "sd3-config",
                              keep_weights_of=("text_encoder", "text_encoder_2", "text_encoder_3", "vae"))
    return {"folder": folder, "file": single, "config": config, "pipe": pipe}


@pytest.fixture(scope="session")
def flux_files(tiny_root) -> dict:
    from safetensors.torch import save_file

    from mediagen.families.flux.convert import flux_original_to_diffusers

    pipe = build_flux()
    folder = tiny_root / "flux"
    pipe.save_pretrained(folder, safe_serialization=True)
    original = flux_to_original(pipe.transformer)
    check_roundtrip(flux_original_to_diffusers(dict(original), dict(pipe.transformer.config)),
                    pipe.transformer.state_dict(), "flux transformer")
    single = tiny_root / "flux-single.safetensors"
    save_file({k: v.contiguous() for k, v in original.items()}, str(single))
    # a single FLUX file carries only the transformer: the config folder supplies encoders and VAE weights
    config = config_only_copy(folder, tiny_root / "flux-config",
                              keep_weights_of=("text_encoder", "text_encoder_2", "vae"))
    return {"folder": folder, "file": single, "config": config, "pipe": pipe}


def model_index_class(folder: Path) -> str:
    return json.loads((folder / "model_index.json").read_text())["_class_name"]


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and far faster than two on a busy, shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
