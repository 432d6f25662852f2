"""Weights load from safetensors only; pickles are recognised by content and never executed."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mediagen.errors import UnsafeWeightsError
from mediagen.safeload import (
    check_diffusers_folder,
    convert_to_safetensors,
    load_safetensors,
    safetensors_keys,
    sniff_format,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_payload_pickle(path: Path, marker: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump({"weight": Payload(marker)}, f, protocol=4)


def write_payload_torch_zip(path: Path, marker: Path) -> None:
    torch.save({"weight": torch.zeros(2), "evil": Payload(marker)}, str(path))


def test_sniff_by_content_not_extension(tmp_path):
    st = tmp_path / "model.bin"  # safetensors content behind a pickle-ish name
    save_file({"a": torch.ones(3)}, str(st))
    assert sniff_format(st) == "safetensors"
    raw = tmp_path / "model.safetensors"
    write_payload_pickle(raw, tmp_path / "never")
    assert sniff_format(raw) == "pickle"
    zipped = tmp_path / "model2.safetensors"
    torch.save({"w": torch.zeros(2)}, str(zipped))
    assert sniff_format(zipped) == "pickle-zip"
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    assert sniff_format(gguf) == "gguf"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"hello world, not weights")
    assert sniff_format(junk) == "unknown"
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("name", ["evil.safetensors", "evil.ckpt", "evil.bin"])
@pytest.mark.parametrize("writer", [write_payload_pickle, write_payload_torch_zip])
def test_payload_pickle_refused_and_never_executed(tmp_path, name, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    writer(path, marker)
    assert not marker.exists()  # torch.save/pickle.dump do not run __reduce__'s callable
    with pytest.raises(UnsafeWeightsError, match="pickle") as err:
        load_safetensors(path)
    assert "mediagen.convert" in str(err.value)
    with pytest.raises(UnsafeWeightsError):
        safetensors_keys(path)
    assert not marker.exists()


def test_detect_and_load_refuse_disguised_pickle(tmp_path):
    from mediagen.families.detect import detect_family
    from mediagen.families.sd15 import load

    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    write_payload_pickle(path, marker)
    with pytest.raises(UnsafeWeightsError):
        detect_family(str(path))
    with pytest.raises(UnsafeWeightsError):
        load(str(path), device="cpu", dtype=torch.float32)
    assert not marker.exists()


def test_load_safetensors_roundtrip(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.arange(4.0), "b": torch.ones(2, 2)}, str(path))
    sd = load_safetensors(path)
    assert torch.equal(sd["a"], torch.arange(4.0)) and sorted(safetensors_keys(path)) == ["a", "b"]


def _folder(tmp_path: Path, files: dict[str, bytes | None]) -> Path:
    root = tmp_path / "pipe"
    (root / "unet").mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                       "unet": ["diffusers", "UNet2DConditionModel"]}))
    for name, content in files.items():
        p = root / "unet" / name
        if content is None:
            save_file({"w": torch.zeros(1)}, str(p))
        else:
            p.write_bytes(content)
    return root


def test_folder_with_only_bin_weights_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    root = _folder(tmp_path, {"config.json": b"{}"})
    write_payload_pickle(root / "unet" / "diffusion_pytorch_model.bin", marker)
    with pytest.raises(UnsafeWeightsError, match="only as diffusion_pytorch_model.bin"):
        check_diffusers_folder(root)
    assert not marker.exists()


def test_folder_with_disguised_safetensors_is_refused(tmp_path):
    root = _folder(tmp_path, {"config.json": b"{}"})
    write_payload_pickle(root / "unet" / "diffusion_pytorch_model.safetensors", tmp_path / "pwned")
    with pytest.raises(UnsafeWeightsError):
        check_diffusers_folder(root)


def test_folder_with_safetensors_passes(tmp_path):
    root = _folder(tmp_path, {"config.json": b"{}", "diffusion_pytorch_model.safetensors": None})
    check_diffusers_folder(root)


def test_convert_plain_checkpoint(tmp_path):
    src = tmp_path / "model.ckpt"
    shared = torch.arange(6.0)
    torch.save({"state_dict": {"a": shared, "b": shared[:3], "c": torch.ones(2, 2), "step": 5}}, str(src))
    dst = tmp_path / "model.safetensors"
    assert convert_to_safetensors(src, dst) == 3
    sd = load_safetensors(dst)
    assert torch.equal(sd["a"], shared) and torch.equal(sd["b"], shared[:3]) and torch.equal(sd["c"], torch.ones(2, 2))


def test_convert_refuses_payload_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.ckpt"
    write_payload_torch_zip(src, marker)
    with pytest.raises(UnsafeWeightsError, match="more than plain tensors"):
        convert_to_safetensors(src, tmp_path / "out.safetensors")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_convert_cli(tmp_path, capsys):
    from mediagen.convert import main

    src = tmp_path / "m.pt"
    torch.save({"w": torch.ones(3)}, str(src))
    dst = tmp_path / "m.safetensors"
    assert main([str(src), str(dst)]) == 0
    assert torch.equal(load_safetensors(dst)["w"], torch.ones(3))
    write_payload_pickle(tmp_path / "evil.ckpt", tmp_path / "pwned")
    assert main([str(tmp_path / "evil.ckpt"), str(tmp_path / "evil.safetensors")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "pwned").exists()


def test_payload_is_live(tmp_path):
    """The payload used above really runs under an unrestricted unpickler (so the refusals are meaningful)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    write_payload_pickle(path, marker)
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()
