"""Family detection from diffusers folders, single-file key names and hub ids."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from mediagen.errors import ModelNotFoundError, RequestError, UnsupportedError
from mediagen.families.detect import PIPELINE_FAMILIES, detect_family

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("cls,family", sorted(PIPELINE_FAMILIES.items()))
def test_folder_by_pipeline_class(tmp_path, cls, family):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    assert detect_family(str(tmp_path)) == family


def test_unknown_pipeline_class(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(UnsupportedError, match="KandinskyPipeline"):
        detect_family(str(tmp_path))


def test_folder_without_index(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        detect_family(str(tmp_path))


def _file(tmp_path, keys):
    path = tmp_path / "ckpt.safetensors"
    save_file({k: torch.zeros(1) for k in keys}, str(path))
    return str(path)


@pytest.mark.parametrize("keys,family", [
    (["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.transformer.text_model.final_layer_norm.weight",
      "first_stage_model.decoder.conv_in.weight"], "sd15"),
    (["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.1.model.positional_embedding",
      "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"], "sdxl"),
    (["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.label_emb.0.0.weight"], "sdxl"),
    (["double_blocks.0.img_attn.norm.key_norm.scale", "single_blocks.0.linear1.weight"], "flux"),
    (["model.diffusion_model.double_blocks.0.img_attn.qkv.weight"], "flux"),
    (["joint_blocks.0.context_block.adaLN_modulation.1.bias", "x_embedder.proj.weight"], "sd3"),
    (["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"], "sd3"),
])
def test_single_file_by_keys(tmp_path, keys, family):
    assert detect_family(_file(tmp_path, keys)) == family


def test_lora_given_as_model(tmp_path):
    with pytest.raises(RequestError, match="LoRA"):
        detect_family(_file(tmp_path, ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"]))


def test_diffusers_component_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        detect_family(_file(tmp_path, ["down_blocks.0.resnets.0.conv1.weight"]))


def test_unknown_layout(tmp_path):
    with pytest.raises(UnsupportedError, match="unrecognised"):
        detect_family(_file(tmp_path, ["something.else"]))


@pytest.mark.parametrize("hub_id,family", [
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd15"),
    ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
    ("stabilityai/stable-diffusion-3.5-medium", "sd3"),
    ("black-forest-labs/FLUX.1-schnell", "flux"),
    ("someone/my-flux-finetune", "flux"),
    ("someone/juggernaut-xl-v10", "sdxl"),
])
def test_hub_ids_by_catalog_and_name(hub_id, family):
    assert detect_family(hub_id) == family


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="unreachable.*local diffusers folder"):
        detect_family("someone/mystery-model")


def test_nonsense_source():
    with pytest.raises(ModelNotFoundError, match="neither a folder"):
        detect_family("/no/such/place.safetensors")
