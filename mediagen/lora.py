"""LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") merged into model weights.

Reads diffusers/PEFT (`lora_A`/`lora_B`, `lora.down`/`lora.up`) and kohya (`lora_unet_..._lora_down/up/alpha`)
safetensors, several at once with weights: W' = W + sum_i weight_i * alpha_i / rank_i * up_i @ down_i.
Every LoRA layer is either applied or reported as unmatched; unloading restores the saved originals bit-exact.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mediagen.errors import RequestError
from mediagen.safeload import load_safetensors

# suffix -> role, longest first so that e.g. '.lora_linear_layer.down.weight' wins over '.down.weight'
_SUFFIXES = (
    (".lora_linear_layer.down.weight", "down"),
    (".lora_linear_layer.up.weight", "up"),
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".lora_A.default.weight", "down"),
    (".lora_B.default.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".alpha", "alpha"),
)
# name prefix -> component role ("denoiser" = unet or transformer)
_PREFIXES = (
    ("lora_unet_", "denoiser"),
    ("lora_transformer_", "denoiser"),
    ("lora_te1_", "text_encoder"),
    ("lora_te2_", "text_encoder_2"),
    ("lora_te3_", "text_encoder_3"),
    ("lora_te_", "text_encoder"),
    ("unet.", "denoiser"),
    ("transformer.", "denoiser"),
    ("diffusion_model.", "denoiser"),
    ("text_encoder_2.", "text_encoder_2"),
    ("text_encoder_3.", "text_encoder_3"),
    ("text_encoder.", "text_encoder"),
)
_OLD_PROCESSOR = (
    (".processor.to_q_lora", ".to_q"),
    (".processor.to_k_lora", ".to_k"),
    (".processor.to_v_lora", ".to_v"),
    (".processor.to_out_lora", ".to_out.0"),
    (".to_q_lora", ".q_proj"),  # text encoders in the same old format
    (".to_k_lora", ".k_proj"),
    (".to_v_lora", ".v_proj"),
    (".to_out_lora", ".out_proj"),
)


@dataclass
class LoraLayer:
    """One low-rank update: down (r, in[, kh, kw]), up (out, r[, 1, 1]), alpha (None = rank)."""

    down: torch.Tensor | None = None
    up: torch.Tensor | None = None
    alpha: float | None = None


@dataclass
class LoraReport:
    """Which layers of one LoRA file were applied and which found no target (with the reason)."""

    path: str
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def summary(self, limit: int = 5) -> str:
        """'applied M of N layers; unmatched: a, b, c ...'."""
        total = len(self.matched) + len(self.unmatched)
        text = f"LoRA {self.path}: applied {len(self.matched)} of {total} layers"
        if self.unmatched:
            more = f" and {len(self.unmatched) - limit} more" if len(self.unmatched) > limit else ""
            text += f"; unmatched: {', '.join(self.unmatched[:limit])}{more}"
        return text


@dataclass
class Target:
    """Rows [start, stop) of a module's weight that a LoRA layer name addresses; `swap` exchanges halves."""

    component: str
    module: str
    start: int = 0
    stop: int | None = None
    swap: bool = False


def read_lora(path: str | Path) -> tuple[dict[str, LoraLayer], list[str]]:
    """Group a LoRA file's tensors into layers; return (layers by name, keys of no known LoRA role)."""
    layers: dict[str, LoraLayer] = {}
    strays: list[str] = []
    for key, t in load_safetensors(path).items():
        for suffix, role in _SUFFIXES:
            if key.endswith(suffix):
                layer = layers.setdefault(key[: -len(suffix)], LoraLayer())
                if role == "alpha":
                    layer.alpha = float(t.float().item())
                else:
                    setattr(layer, role, t)
                break
        else:
            strays.append(key)
    return layers, strays


def _underscored(name: str) -> str:
    return name.replace(".", "_")


def build_index(components: dict[str, torch.nn.Module], unet_config: dict | None = None) -> dict[str, dict[str, list[Target]]]:
    """Per component role, every spelling of every weight-bearing module: dotted, kohya underscored, LDM, BFL."""
    from mediagen.families.diffusers_common import unet_name_to_ldm

    index: dict[str, dict[str, list[Target]]] = {}
    for comp, module in components.items():
        role = "denoiser" if comp in ("unet", "transformer") else comp
        names: dict[str, list[Target]] = {}
        is_flux = type(module).__name__ == "FluxTransformer2DModel"
        for name, sub in module.named_modules():
            if not isinstance(getattr(sub, "weight", None), torch.Tensor) or not name:
                continue
            spellings = [name]
            if comp.startswith("text_encoder") and not name.startswith("text_model."):
                spellings.append("text_model." + name)  # transformers >= 5 CLIPTextModel drops the wrapper
            if comp == "unet" and unet_config is not None:
                ldm = unet_name_to_ldm(name, unet_config)
                if ldm:
                    spellings.append(ldm)
            for s in spellings:
                target = [Target(comp, name)]
                names.setdefault(s, target)
                names.setdefault(_underscored(s), target)
        if is_flux:
            from mediagen.families.flux.convert import SWAP, flux_module_map

            for orig, pieces in flux_module_map(dict(module.config)).items():
                targets = [Target(comp, p.name, p.start, p.stop, p.transform == SWAP) for p in pieces]
                names.setdefault(orig, targets)
                names.setdefault(_underscored(orig), targets)
        index.setdefault(role, {}).update(names)
    return index


def resolve(name: str, index: dict[str, dict[str, list[Target]]]) -> list[Target] | None:
    """The targets a LoRA layer name addresses, or None."""
    for prefix, role in _PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix):]
            table = index.get(role, {})
            if rest in table:
                return table[rest]
            for old, new in _OLD_PROCESSOR:
                rest = rest.replace(old, new)
            return table.get(rest)
    return None


def layer_delta(layer: LoraLayer) -> torch.Tensor:
    """up @ down * alpha / rank in float32, shaped (out, in[, kh, kw])."""
    down, up = layer.down.float(), layer.up.float()
    rank = down.shape[0]
    scale = (layer.alpha if layer.alpha is not None else rank) / rank
    delta = up.flatten(1) @ down.flatten(1)  # (out, in * kh * kw)
    if down.ndim == 4:
        delta = delta.reshape(up.shape[0], *down.shape[1:])
    return delta * scale


@dataclass
class LoraSet:
    """LoRAs merged into a model's weights, with the originals saved for an exact restore."""

    key: tuple
    reports: list[LoraReport]
    _saved: list[tuple[torch.nn.Parameter, torch.Tensor]] = field(default_factory=list, repr=False)

    @classmethod
    def apply(cls, components: dict[str, torch.nn.Module], loras: list[tuple[str, float]], *,
              unet_config: dict | None = None) -> LoraSet:
        """Merge every LoRA (path, weight); a LoRA matching nothing raises, partial matches warn by name."""
        index = build_index(components, unet_config)
        deltas: dict[tuple[str, str], torch.Tensor] = {}
        params: dict[tuple[str, str], torch.nn.Parameter] = {}
        reports = []
        for path, weight in loras:
            report = LoraReport(str(path))
            layers, strays = read_lora(path)
            report.unmatched += [f"{k} (not a LoRA tensor)" for k in strays]
            for name, layer in sorted(layers.items()):
                problem = _add_layer(name, layer, weight, index, components, deltas, params)
                (report.unmatched.append(f"{name} ({problem})") if problem else report.matched.append(name))
            if not report.matched:
                raise RequestError(
                    f"{report.summary()}. None of its layers fit this model: it was probably made for another "
                    "model family (SD 1.5, SDXL, SD3 and FLUX LoRAs are not interchangeable)"
                )
            if report.unmatched:
                warnings.warn(report.summary(), stacklevel=2)
            reports.append(report)
        saved = []
        with torch.no_grad():
            for k, delta in deltas.items():
                p = params[k]
                saved.append((p, p.detach().clone()))
                p.copy_((p.float() + delta.to(p.device)).to(p.dtype))
        return cls(tuple((str(p), float(w)) for p, w in loras), reports, saved)

    def restore(self) -> None:
        """Put back the saved original weights (bit-exact)."""
        with torch.no_grad():
            for p, original in self._saved:
                p.copy_(original)
        self._saved.clear()


def _add_layer(name: str, layer: LoraLayer, weight: float, index: dict, components: dict,
               deltas: dict, params: dict) -> str | None:
    """Accumulate one layer's update into `deltas`; return why it cannot be applied, or None."""
    if layer.down is None or layer.up is None:
        return "down or up matrix missing"
    targets = resolve(name, index)
    if targets is None:
        return "no such layer in this model"
    delta = layer_delta(layer) * weight
    pending = []
    for t in targets:
        module = components[t.component].get_submodule(t.module)
        p = module.weight
        part = delta[t.start:t.stop]
        if t.swap:
            a, b = part.chunk(2, dim=0)
            part = torch.cat([b, a], dim=0)
        if part.shape != p.shape:
            if part.numel() != p.numel():
                return f"shape {tuple(part.shape)} does not fit {t.module} {tuple(p.shape)}"
            part = part.reshape(p.shape)  # a linear update on a 1x1 convolution, or back
        pending.append(((t.component, t.module), p, part))
    for k, p, part in pending:
        params[k] = p
        deltas[k] = deltas[k] + part if k in deltas else part
    return None

