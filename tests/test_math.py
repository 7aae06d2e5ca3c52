"""The shared math against references: analytic KL vs Monte Carlo, likelihoods vs scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from genzoo.models.layers import bernoulli_nll, gaussian_kl, gaussian_nll, reparameterize


def test_analytic_kl_matches_monte_carlo():
    generator = torch.Generator().manual_seed(0)
    mean = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype=torch.float64)
    log_var = torch.tensor([[0.2, -1.5, 0.7], [0.0, 1.0, -0.3]], dtype=torch.float64)
    samples = 200_000
    z = reparameterize(mean.repeat(samples, 1), log_var.repeat(samples, 1), generator=generator)
    z = z.view(samples, 2, 3)
    std = torch.exp(0.5 * log_var)
    log_q = torch.distributions.Normal(mean, std).log_prob(z).sum(-1)  # (S, 2)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    monte_carlo = (log_q - log_p).mean(0)
    standard_error = (log_q - log_p).std(0) / math.sqrt(samples)
    analytic = gaussian_kl(mean, log_var)
    assert torch.all((analytic - monte_carlo).abs() < 4 * standard_error)
    assert torch.allclose(analytic, torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std), torch.distributions.Normal(0.0, 1.0)).sum(-1))


def test_kl_is_zero_only_at_the_prior():
    assert float(gaussian_kl(torch.zeros(1, 4), torch.zeros(1, 4))) == 0.0
    assert float(gaussian_kl(torch.full((1, 4), 0.1), torch.zeros(1, 4))) > 0


def test_reparameterised_samples_have_the_posterior_moments_and_epsilon_scale():
    generator = torch.Generator().manual_seed(1)
    mean, log_var = torch.full((100_000, 1), 2.0), torch.full((100_000, 1), math.log(0.25))
    z = reparameterize(mean, log_var, generator=generator)
    assert abs(float(z.mean()) - 2.0) < 0.01 and abs(float(z.std()) - 0.5) < 0.01
    z_small = reparameterize(mean, log_var, generator=generator, epsilon_sigma=0.1)
    assert abs(float(z_small.std()) - 0.05) < 0.001


def test_bernoulli_nll_matches_scipy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 1, 4, 4))
    targets = rng.integers(0, 2, size=(3, 1, 4, 4)).astype(float)
    expected = -stats.bernoulli.logpmf(targets, 1 / (1 + np.exp(-logits))).reshape(3, -1).sum(1)
    got = bernoulli_nll(torch.tensor(logits), torch.tensor(targets)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("std", [0.7071, 1.0, 0.1])
def test_gaussian_nll_matches_scipy(std):
    rng = np.random.default_rng(1)
    mean, targets = rng.uniform(size=(2, 1, 3, 3)), rng.uniform(size=(2, 1, 3, 3))
    expected = -stats.norm.logpdf(targets, loc=mean, scale=std).reshape(2, -1).sum(1)
    got = gaussian_nll(torch.tensor(mean), torch.tensor(targets), std).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_transposed_convolutions_start_at_the_scale_of_a_convolution():
    """The decoder's transposed convolutions are initialised as a convolution with the same fan-in
    would be (PyTorch's own default uses the output channels: 5.7x too large for 32 -> 1)."""
    from genzoo.data import DataSpec
    from genzoo.models.layers import ImageDecoder

    torch.manual_seed(0)
    decoder = ImageDecoder(DataSpec(channels=1, height=28, width=28, num_classes=10), latent_dim=2,
                           conv_channels=(32, 64), hidden_dims=(16,))
    last = decoder.upsample[-1]
    bound = 1 / (32 * 9) ** 0.5
    largest = float(last.weight.detach().abs().max())
    assert 0.9 * bound < largest <= bound
