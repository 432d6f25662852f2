"""Weighted, unbounded-length prompts for the CLIP text encoders of SD 1.5 and SDXL."""

from __future__ import annotations

import importlib

import pytest
import torch

from mediagen.families.diffusers_common import CHUNK, tokenize_weighted, weighted_clip_embeds

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sd15(sd15_files):
    return importlib.import_module("mediagen.families.sd15").load(str(sd15_files["folder"]), device="cpu",
                                                                   dtype=torch.float32)


@pytest.fixture(scope="module")
def sdxl(sdxl_files):
    return importlib.import_module("mediagen.families.sdxl").load(str(sdxl_files["folder"]), device="cpu",
                                                                   dtype=torch.float32)


def sd15_embed(model, prompt, negative=""):
    kw = model.encode_prompt(model.base, prompt, negative, 7.0)
    return kw["prompt_embeds"], kw["negative_prompt_embeds"]


def test_plain_short_prompt_matches_diffusers(sd15):
    ours, ours_neg = sd15_embed(sd15, "a cat on a mat", "blurry")
    ref, ref_neg = sd15.base.encode_prompt("a cat on a mat", "cpu", 1, True, "blurry")
    assert torch.equal(ours, ref) and torch.equal(ours_neg, ref_neg)


def test_sdxl_plain_short_prompt_matches_diffusers(sdxl):
    ours = sdxl.encode_prompt(sdxl.base, "a cat on a mat", "", 6.0)
    pos, neg, pooled, npooled = sdxl.base.encode_prompt("a cat on a mat", device="cpu", num_images_per_prompt=1,
                                                        do_classifier_free_guidance=True, negative_prompt=None)
    assert torch.equal(ours["prompt_embeds"], pos) and torch.equal(ours["pooled_prompt_embeds"], pooled)
    assert torch.equal(ours["negative_prompt_embeds"], neg) and torch.equal(ours["negative_pooled_prompt_embeds"],
                                                                            npooled)
    assert not neg.any()  # SDXL's empty negative prompt is zeros


def test_weighting_changes_embeddings(sd15):
    plain, _ = sd15_embed(sd15, "a cat on a mat")
    same, _ = sd15_embed(sd15, "a (cat:1.0) on a mat")
    up, _ = sd15_embed(sd15, "a (cat:1.5) on a mat")
    down, _ = sd15_embed(sd15, "a [cat] on a mat")
    assert torch.equal(plain, same)
    assert not torch.allclose(plain, up) and not torch.allclose(plain, down) and not torch.allclose(up, down)


def test_weights_follow_tokens(sd15):
    tok = sd15.base.tokenizer
    ids, weights = tokenize_weighted(tok, "ab (cd:1.5) [ef]")
    assert len(ids) == len(weights) == 6
    assert weights[:2] == [1.0, 1.0] and weights[2:4] == [1.5, 1.5]
    assert weights[4:] == pytest.approx([1 / 1.1] * 2)


def long_prompt(last: str) -> str:
    words = ["red cube", "blue ball", "green tree", "tall house", "small dog"] * 12
    return ", ".join(words) + ", " + last


def test_200_token_prompt_is_not_truncated(sd15):
    tok = sd15.base.tokenizer
    prompt_a, prompt_b = long_prompt("cat"), long_prompt("owl")
    n_tokens = len(tokenize_weighted(tok, prompt_a)[0])
    assert n_tokens > 200
    a, _ = sd15_embed(sd15, prompt_a)
    b, _ = sd15_embed(sd15, prompt_b)
    chunks = -(-n_tokens // CHUNK)
    assert a.shape == (1, 77 * chunks, 32)
    # only the window holding the last word differs (CLIP is causal within a window)
    assert torch.equal(a[:, : 77 * (chunks - 1)], b[:, : 77 * (chunks - 1)])
    assert not torch.allclose(a[:, 77 * (chunks - 1):], b[:, 77 * (chunks - 1):])
    # diffusers' own encoding cuts at 77 tokens and cannot see the last word
    ref_a, _ = sd15.base.encode_prompt(prompt_a, "cpu", 1, False)
    ref_b, _ = sd15.base.encode_prompt(prompt_b, "cpu", 1, False)
    assert torch.equal(ref_a, ref_b)


def test_negative_padded_to_prompt_length(sd15, sdxl):
    pos, neg = sd15_embed(sd15, long_prompt("cat"), "blurry")
    assert pos.shape == neg.shape
    kw = sdxl.encode_prompt(sdxl.base, "cat", long_prompt("blurry"), 6.0)
    assert kw["prompt_embeds"].shape == kw["negative_prompt_embeds"].shape
    assert kw["prompt_embeds"].shape[-1] == 72 and kw["pooled_prompt_embeds"].shape == (1, 32)


def test_break_starts_a_new_window(sd15):
    tok = sd15.base.tokenizer
    ids, _ = tokenize_weighted(tok, "ab BREAK cd")
    assert len(ids) == CHUNK + 2 and ids[CHUNK:] == tok("cd", add_special_tokens=False).input_ids
    (z, _), = weighted_clip_embeds([tok], [sd15.base.text_encoder], ["ab BREAK cd"], penultimate=False)
    assert z.shape == (1, 154, 32)


def test_long_weighted_prompt_generates(sd15):
    from mediagen.model import Job
    from mediagen.schema import GenerationRequest, Mode

    req = GenerationRequest(prompt=long_prompt("(cat:1.4)"), negative_prompt="blurry", seed=1, steps=2, width=64,
                            height=64)
    out = sd15.generate(Job(request=req, mode=Mode.T2I), lambda p: None)
    assert out[0].image.size == (64, 64)
