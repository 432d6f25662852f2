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
    req = GenerationRequest(prompt="x", image="a.png", mask="m.png", mask_blur=4, seed=1)
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
    req = GenerationRequest(prompt="x", image="a.png", extend=Extend(left=32, right=64), seed=3)
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
    req = GenerationRequest(prompt="x", image="a.png", extend=Extend(left=32), mask_blur=4, seed=3)
    _, out = _run(Job(request=req, mode=Mode.OUTPAINT, image=img))
    row = np.asarray(out)[:, :, 0].astype(int)  # (128, 160); generated grey 128 on the left
    assert (row[:, 32:] == 100).all() and (row[:, :24] == 128).all()
    assert (np.abs(np.diff(row[:, 24:33], axis=1)) <= 10).all()  # a smooth ramp 128 -> 100, no noisy pixels
    assert (np.diff(row[:, 24:33], axis=1) <= 0).all()
