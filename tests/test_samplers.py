"""Samplers against Gaussian data, whose ideal denoiser and probability-flow ODE are known in closed form."""

import math

import pytest
import torch

from mediagen.engine.denoisers import cfg_denoiser, flow_denoiser
from mediagen.engine.loop import batch_noise, denoise, start_index
from mediagen.engine.samplers import SAMPLERS, get_sampler
from mediagen.engine.schedules import flow_sigmas, guidance_floor, karras_sigmas
from mediagen.errors import UnsupportedError

MU, S = 0.5, 0.3  # data ~ N(MU, S^2) in every dimension


def gauss_denoiser(x, sigma, cond):
    """E[x0 | x] for x = x0 + sigma * eps with x0 ~ N(MU, S^2)."""
    s2 = sigma.reshape(-1, 1, 1, 1) ** 2
    return MU + S**2 / (S**2 + s2) * (x - MU)


def gauss_velocity(x_t, t, cond):
    """Ideal rectified-flow velocity E[eps - x0 | x_t] for the same Gaussian data."""
    t = t.reshape(-1, 1, 1, 1)
    var = (1 - t) ** 2 * S**2 + t**2
    centred = x_t - (1 - t) * MU
    return t / var * centred - (MU + (1 - t) * S**2 / var * centred)


def exact_ode_end(x_start, sigma_max):
    """The probability-flow ODE keeps (x - MU) / sqrt(S^2 + sigma^2) constant."""
    return MU + S * (x_start - MU) / math.sqrt(S**2 + sigma_max**2)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samples_have_the_data_distribution(name):
    sigmas = karras_sigmas(400, 0.01, 40.0)  # ancestral Euler's first-order bias needs many steps
    x = torch.randn(256, 4, 4, 4, generator=torch.Generator().manual_seed(0)) * sigmas[0]
    out = get_sampler(name)(gauss_denoiser, x, sigmas, None, noise=lambda like: torch.randn_like(like))
    assert abs(out.mean().item() - MU) < 0.02
    assert abs(out.std().item() - S) < 0.02


@pytest.mark.parametrize("name,tol", [("euler", 0.07), ("ddim", 0.07), ("heun", 0.01), ("dpmpp_2m", 0.01)])
def test_deterministic_samplers_follow_the_ode(name, tol):
    sigmas = karras_sigmas(50, 0.01, 40.0)
    x = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * sigmas[0]
    out = get_sampler(name)(gauss_denoiser, x, sigmas, None)
    err = (out - exact_ode_end(x, float(sigmas[0]))).abs().max().item()
    assert err < tol, err


def test_higher_order_samplers_are_more_accurate_than_euler():
    sigmas = karras_sigmas(12, 0.01, 40.0)
    x = torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * sigmas[0]
    exact = exact_ode_end(x, float(sigmas[0]))
    err = {n: (SAMPLERS[n](gauss_denoiser, x, sigmas, None) - exact).abs().mean().item()
           for n in ("euler", "heun", "dpmpp_2m")}
    assert err["heun"] < err["euler"] and err["dpmpp_2m"] < err["euler"], err


def test_flow_wrapper_makes_every_sampler_sample_flow_models():
    D = flow_denoiser(gauss_velocity)
    for name in ("flow_euler", "euler_a", "dpmpp_2m"):
        out = denoise(D, shape=(4, 8, 8), seeds=list(range(64)), sigmas=flow_sigmas(300, shift=3.0),
                      sampler=name, cond=None)
        assert abs(out.mean().item() - MU) < 0.02, name
        assert abs(out.std().item() - S) < 0.03, name


def test_flow_euler_equals_a_plain_flow_matching_euler_loop():
    steps, seed = 8, 3
    D = flow_denoiser(gauss_velocity)
    ours = denoise(D, shape=(1, 4, 4), seeds=[seed], sigmas=flow_sigmas(steps), sampler="flow_euler", cond=None)
    x = batch_noise((1, 4, 4), [seed])
    ts = torch.linspace(1 - 1e-4, 0, steps + 1)
    ts[0] = 1 - 1e-4
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t) * gauss_velocity(x, t.reshape(1), None)
    assert torch.allclose(ours, x, atol=2e-3)


def test_same_seed_same_result_and_batch_item_equals_single():
    D = flow_denoiser(gauss_velocity)
    kw = dict(shape=(2, 4, 4), sigmas=flow_sigmas(6), sampler="euler_a", cond=None)
    a = denoise(D, seeds=[5, 6], **kw)
    b = denoise(D, seeds=[5, 6], **kw)
    c = denoise(D, seeds=[6], **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    assert torch.allclose(a[1:2], denoise(D, seeds=[6], **kw)) and torch.equal(c, denoise(D, seeds=[6], **kw))


def test_img2img_strength_zero_keeps_and_one_ignores_the_input():
    D = flow_denoiser(gauss_velocity)
    init = torch.full((1, 2, 4, 4), 3.0)  # far from the data mean
    kw = dict(shape=(2, 4, 4), seeds=[0], sigmas=flow_sigmas(10), sampler="euler", cond=None, init=init)
    weak = denoise(D, strength=0.1, **kw)
    strong = denoise(D, strength=1.0, **kw)
    assert (weak - init).abs().mean() < (strong - init).abs().mean()
    assert abs(strong.mean().item() - MU) < 0.5
    assert start_index(10, 0.3) == 7 and start_index(10, 1.0) == 0 and start_index(10, 0.0) == 9


def test_known_region_is_kept_exactly_in_latent_space():
    D = flow_denoiser(gauss_velocity)
    known = torch.randn(1, 2, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:5, 2:5] = 1
    out = denoise(D, shape=(2, 8, 8), seeds=[0], sigmas=flow_sigmas(8), sampler="dpmpp_2m", cond=None,
                  known=known, known_mask=mask)
    assert torch.allclose(out * (1 - mask), known * (1 - mask), atol=1e-5)
    assert not torch.allclose(out * mask, known * mask)


def test_cfg_extrapolates_from_negative_towards_positive():
    def D(x, sigma, cond):
        return cond.reshape(-1, 1, 1, 1).expand_as(x)

    g = cfg_denoiser(D, 3.0)
    x = torch.zeros(2, 1, 2, 2)
    out = g(x, torch.ones(2), (torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.5])))
    assert torch.allclose(out[0], torch.full((1, 2, 2), 3.0)) and torch.allclose(out[1], torch.full((1, 2, 2), 2.0))


def test_guidance_stops_below_its_floor_with_one_pass():
    calls = []

    def D(x, sigma, cond):
        calls.append(x.shape[0])
        return cond.reshape(-1, 1, 1, 1).expand_as(x)

    sigmas = flow_sigmas(10)
    floor = guidance_floor(sigmas, 0.5)  # the first 5 of 10 steps guided
    assert floor == float(sigmas[5])
    g = cfg_denoiser(D, 3.0, sigma_floor=floor)
    cond = (torch.tensor([1.0]), torch.tensor([0.0]))
    x = torch.zeros(1, 1, 2, 2)
    guided = [g(x, sigmas[i : i + 1], cond)[0, 0, 0, 0].item() for i in range(10)]
    assert guided == [3.0] * 5 + [1.0] * 5  # u + 3 (c - u) above the floor, c alone below
    assert calls == [2] * 5 + [1] * 5  # one batched call of two, then one of one
    assert guidance_floor(sigmas, 1.0) == 0.0  # every step guided
    assert guidance_floor(sigmas, 0.01) == float(sigmas[1])  # at least the first step
    with pytest.raises(ValueError, match="guidance end"):
        guidance_floor(sigmas, 0.0)


def test_unknown_sampler_lists_the_known_ones():
    with pytest.raises(UnsupportedError, match="euler_a"):
        get_sampler("nope")


def test_callback_sees_every_step_and_can_cancel():
    from mediagen.errors import Cancelled

    seen = []

    def cb(info):
        seen.append((info.step, info.total))
        if info.step == 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        denoise(flow_denoiser(gauss_velocity), shape=(1, 2, 2), seeds=[0], sigmas=flow_sigmas(10),
                sampler="euler", cond=None, callback=cb)
    assert seen == [(1, 10), (2, 10), (3, 10)]
