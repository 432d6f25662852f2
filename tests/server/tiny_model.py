"""A tiny real model for the server tests: an untrained pixel-space velocity net sampled by mediagen's engine.

It supports t2i, i2i, inpaint and outpaint through the same engine pieces as the built-in model (flow
denoiser, classifier-free guidance, the shared denoising loop; the core builds canvases and composites),
so every server path runs real generation; only the weights are random (seeded, so runs reproduce).
Served with `--model-plugin tiny=tests/server/tiny_model.py:load`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from mediagen.capabilities import Capabilities
from mediagen.engine.denoisers import cfg_denoiser, flow_denoiser
from mediagen.engine.loop import denoise
from mediagen.engine.samplers import StepInfo
from mediagen.engine.schedules import flow_sigmas
from mediagen.model import Job, Output, Progress, ProgressFn
from mediagen.schema import Mode

TEXT_DIM = 16
WIDTH = 16


class TinyVelocity(nn.Module):
    """v(x_t, t, text): two 3x3 convs with a time channel and a text FiLM bias."""

    def __init__(self) -> None:
        super().__init__()
        self.text = nn.Embedding(256, TEXT_DIM)
        self.inp = nn.Conv2d(4, WIDTH, 3, padding=1)
        self.film = nn.Linear(TEXT_DIM, WIDTH)
        self.mid = nn.Conv2d(WIDTH, WIDTH, 3, padding=1)
        self.out = nn.Conv2d(WIDTH, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        tmap = t.view(-1, 1, 1, 1).to(x.dtype).expand(-1, 1, *x.shape[2:])  # (B, 1, H, W)
        h = torch.tanh(self.inp(torch.cat([x, tmap], 1)))  # (B, WIDTH, H, W)
        h = h + self.film(cond)[:, :, None, None]
        h = torch.tanh(self.mid(h))
        return self.out(h)  # (B, 3, H, W)

    def encode(self, text: str) -> torch.Tensor:
        """Mean byte embedding of the text: (1, TEXT_DIM); zeros for the empty prompt."""
        ids = torch.tensor(list(text.encode()[:256]) or [0], dtype=torch.long)
        e = self.text(ids).mean(0, keepdim=True)
        return e if text else torch.zeros_like(e)


def _to_tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im.convert("RGB"), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def _to_image(x: torch.Tensor) -> Image.Image:
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, 3)
    return Image.fromarray(arr)


class TinyModel:
    """A LoadedModel: t2i, i2i, inpaint, outpaint."""

    def __init__(self, model_id: str = "tiny"):
        self.id = model_id
        torch.manual_seed(0)
        self.net = TinyVelocity().eval()

    def capabilities(self) -> Capabilities:
        return Capabilities(model=self.id, family="test", modes=[Mode.T2I, Mode.I2I, Mode.INPAINT, Mode.OUTPAINT],
                            samplers=["euler", "euler_a", "dpmpp_2m"], default_sampler="euler", default_steps=4,
                            default_guidance=2.0, default_width=64, default_height=64, size_multiple=8,
                            min_size=16, max_size=1024, notes="an untrained test model")

    def weights_hash(self) -> str:
        h = hashlib.sha256()
        for k, v in sorted(self.net.state_dict().items()):
            h.update(k.encode() + v.numpy().tobytes())
        return h.hexdigest()[:12]

    @torch.no_grad()
    def generate(self, job: Job, progress: ProgressFn) -> list[Output]:
        req = job.request
        pos, neg = self.net.encode(req.prompt), self.net.encode(req.negative_prompt)
        den = cfg_denoiser(flow_denoiser(lambda x, t, c: self.net(x, t, c)), float(req.guidance))
        # edit modes arrive as i2i or inpaint on a canvas/crop; the core composites the outputs back
        original, mask = job.image, job.mask
        init = known = known_mask = None
        w, h = (req.width, req.height) if original is None else original.size
        if original is not None:
            known = _to_tensor(original)  # (1, 3, H, W)
            if job.mode == Mode.I2I:
                init = known
            else:
                known_mask = torch.from_numpy((mask > 0).astype(np.float32))[None, None]  # (1, 1, H, W)
        outputs = []
        for i in range(req.n):
            seed = req.seed + i

            def callback(info: StepInfo, i: int = i) -> None:
                progress(Progress(item=i, items=req.n, step=info.step, steps=info.total,
                                  preview=lambda d=info.denoised: _to_image(d[0]).resize((32, 32))))

            x = denoise(den, shape=(3, h, w), seeds=[seed], sigmas=flow_sigmas(req.steps), sampler=req.sampler,
                        cond=(pos, neg), init=init, strength=req.strength if init is not None else None,
                        known=known if known_mask is not None else None, known_mask=known_mask, callback=callback)
            outputs.append(Output(kind="image", image=_to_image(x[0]), seed=seed))
        return outputs


def load(source: str = "tiny", *, device: str = "cpu", dtype: Any = None) -> TinyModel:
    """The plugin loader: `load(id, device=, dtype=)`."""
    return TinyModel(source)


def load_missing(source: str = "missing", *, device: str = "cpu", dtype: Any = None) -> TinyModel:
    """A plugin whose weights are not installed: loading fails the way a real missing download does."""
    from mediagen.errors import ModelNotFoundError

    raise ModelNotFoundError(f"model {source!r}: weights file {source}.safetensors is not installed")
