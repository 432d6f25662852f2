"""The built-in model's prompts: `(word:w)` weights and prompts longer than the encoder's window."""

import numpy as np
import pytest
import torch

import mediagen
from mediagen.families.builtin.text import TextEncoder, encode_prompts


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder(max_tokens=64)


def test_unweighted_prompt_matches_plain_encoding(encoder):
    a, am = encoder.encode(["a red cube left of a blue sphere", ""])
    b, bm = encode_prompts(encoder, ["a red cube left of a blue sphere", ""])
    assert torch.equal(am.cpu(), bm.cpu()) and torch.allclose(a, b, atol=1e-4)


def test_weight_scales_its_own_token_most(encoder):
    plain, _ = encode_prompts(encoder, ["a red cube"])
    weighted, _ = encode_prompts(encoder, ["a (red:1.6) cube"])
    change = (weighted[0] - plain[0]).norm(dim=-1)  # per token: [CLS] a red cube [SEP]
    assert change.argmax().item() == 2 and change[2] > 2 * change[[0, 1, 3, 4]].max()


def test_long_prompt_is_encoded_past_the_window(encoder):
    long = " ".join(["a small red cube left of a large blue sphere"] * 12)  # ~120 tokens
    states, mask = encode_prompts(encoder, [long, ""])
    assert mask[0].sum().item() > 64 and mask[1].sum().item() == 2
    tail = encode_prompts(encoder, [long + " and a green cone"])[0]
    assert not torch.allclose(tail[0, -4:], states[0, mask[0].sum() - 4:mask[0].sum()])


def test_weighting_changes_the_generated_image():
    kw = dict(seed=3, steps=2, width=64, height=64)
    a = np.asarray(mediagen.t2i("a red cube and a blue sphere", **kw).image)
    b = np.asarray(mediagen.t2i("a (red:1.8) cube and a blue sphere", **kw).image)
    assert not np.array_equal(a, b)
