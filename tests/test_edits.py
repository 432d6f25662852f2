"""Edit modes reduce to inpainting at a size the model takes; finishing keeps outside pixels exact."""

import numpy as np
from PIL import Image

from mediagen.capabilities import Capabilities
from mediagen.edits import plan_edit, working_size
from mediagen.model import Job, Output
from mediagen.schema import Extend, GenerationRequest, Mode

CAPS = Capabilities(model="m", family="f", modes=list(Mode), samplers=["euler"], default_sampler="euler",
                    default_steps=4, default_guidance=3.0, default_width=128, default_height=128,
                    size_multiple=32, min_size=64, max_size=256)


def _image(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _run(job):
    """Plan the edit, 'generate' a flat grey image of the working size, and finish."""
    work, finish = plan_edit(job, CAPS)
    w, h = work.image.size
    assert w % 32 == 0 and h % 32 == 0 and 64 <= min(w, h) and max(w, h) <= 256
    return work, finish([Output(kind="image", image=Image.new("RGB", (w, h), (128, 128, 128)))])[0].image


def test_working_size_keeps_aspect_and_limits():
    assert working_size((128, 128), CAPS) == (128, 128)
    assert working_size((1000, 500), CAPS) == (256, 128)
    assert working_size((40, 40), CAPS) == (64, 64)
    assert working_size((50, 30), CAPS, target_area=128 * 128) == (160, 96)


def test_inpaint_outside_pixels_are_exact_at_any_input_size():
    img = _image(300, 170)
    mask = np.zeros((170, 300), np.float32)
    mask[40:100, 50:200] = 1
    req = GenerationRequest(prompt="x", image="a.png", mask="m.png", mask_blur=4, mask_blend="feather", seed=1)
    work, out = _run(Job(request=req, mode=Mode.INPAINT, image=img, mask=mask))
    assert work.mode == Mode.INPAINT and out.size == img.size
    a, b = np.asarray(out), np.asarray(img)
    assert np.array_equal(a[mask == 0], b[mask == 0])
    assert np.all(a[60:80, 80:170] == 128)  # deep inside: the generated pixels


def test_only_masked_crops_around_a_small_mask_and_stitches_back():
    img = _image(640, 480, 1)
    mask = np.zeros((480, 640), np.float32)
    mask[300:320, 500:530] = 1
    req = GenerationRequest(prompt="x", image="a.png", mask="m.png", inpaint_only_masked=True,
                            inpaint_padding=16, seed=1)
    work, out = _run(Job(request=req, mode=Mode.INPAINT, image=img, mask=mask))
    assert work.image.size[0] * work.image.size[1] >= 64 * 64 and work.mask.max() == 1.0
    a, b = np.asarray(out), np.asarray(img)
    assert np.array_equal(a[mask == 0], b[mask == 0]) and out.size == img.size


def test_outpaint_keeps_the_original_and_fills_every_side_asked():
    img = _image(96, 96, 2)
    req = GenerationRequest(prompt="x", image="a.png", extend=Extend(left=32, right=64), mask_blend="feather", seed=3)
    work, out = _run(Job(request=req, mode=Mode.OUTPAINT, image=img))
    assert work.mode == Mode.INPAINT
    assert out.size == (192, 96)
    a = np.asarray(out)
    assert np.array_equal(a[:, 32:128], np.asarray(img))
    assert np.all(a[:, :20] == 128) and np.all(a[:, 140:] == 128)


def test_i2i_returns_the_input_size():
    img = _image(200, 100, 4)
    work, out = _run(Job(request=GenerationRequest(image="a.png", seed=0), mode=Mode.I2I, image=img))
    assert work.mode == Mode.I2I and work.image.size == (192, 96) and out.size == (200, 100)


def test_outpaint_seam_fades_from_the_image_edge_without_the_start_noise():
    img = Image.new("RGB", (128, 128), (100, 100, 100))  # flat: any jump at the seam is the composite's
    req = GenerationRequest(prompt="x", image="a.png", extend=Extend(left=32), mask_blur=4, mask_blend="feather",
                            seed=3)
    _, out = _run(Job(request=req, mode=Mode.OUTPAINT, image=img))
    row = np.asarray(out)[:, :, 0].astype(int)  # (128, 160); generated grey 128 on the left
    assert (row[:, 32:] == 100).all() and (row[:, :24] == 128).all()
    assert (np.abs(np.diff(row[:, 24:33], axis=1)) <= 10).all()  # a smooth ramp 128 -> 100, no noisy pixels
    assert (np.diff(row[:, 24:33], axis=1) <= 0).all()


def test_outpaint_gradient_blend_continues_the_original_colours():
    img = Image.new("RGB", (128, 128), (125, 120, 116))  # flat; the model's fill is a flat grey 128
    req = GenerationRequest(prompt="x", image="a.png", extend=Extend(left=32), seed=3)
    assert req.mask_blend == "gradient"  # the default
    _, out = _run(Job(request=req, mode=Mode.OUTPAINT, image=img))
    a = np.asarray(out).astype(int)  # (128, 160, 3)
    assert (a[:, 32:] == (125, 120, 116)).all()  # the original, exact
    assert (np.abs(a[:, :32] - (125, 120, 116)) <= 1).all()  # the fill's offset is gone, all the way out


def test_gradient_blend_removes_an_offset_but_does_not_bleed_a_different_colour():
    img = Image.new("RGB", (128, 128), (60, 120, 200))  # 68, 8 and 72 levels off the grey fill
    req = GenerationRequest(prompt="x", image="a.png", extend=Extend(left=32), seed=3)
    _, out = _run(Job(request=req, mode=Mode.OUTPAINT, image=img))
    a = np.asarray(out).astype(int)
    # the green channel's 8 levels are an offset and go; the others differ by more than one and move only
    # the blend's limit (16 levels) towards the original
    assert (np.abs(a[:, :32] - (128 - 16, 120, 128 + 16)) <= 1).all()


def test_inpaint_gradient_blend_keeps_outside_exact_and_removes_the_offset():
    ys, xs = np.mgrid[0:120, 0:200]
    ramp = np.stack([40 + xs, 60 + ys, 200 - xs // 2], axis=2).astype(np.uint8)
    mask = np.zeros((120, 200), np.float32)
    mask[30:90, 40:160] = 1
    req = GenerationRequest(prompt="x", image="a.png", mask="m.png", seed=1)
    work, finish = plan_edit(Job(request=req, mode=Mode.INPAINT, image=Image.fromarray(ramp), mask=mask), CAPS)
    # the "model" gives the same picture 9 levels brighter, at its working size
    gen = Image.fromarray(np.clip(ramp.astype(int) + 9, 0, 255).astype(np.uint8)).resize(work.image.size)
    out = np.asarray(finish([Output(kind="image", image=gen)])[0].image).astype(int)
    assert np.array_equal(out[mask == 0], ramp[mask == 0])
    inside = mask == 1
    err = np.abs(out[inside] - ramp[inside])
    assert err.mean() < 1.0 and np.percentile(err, 99) <= 3  # the offset is gone; resampling is what is left
