"""The evaluation suite against references: scipy, brute force, toy distributions with known
answers, and a latent-variable model whose log-likelihood is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import stats

from genzoo.evaluation.likelihood import estimate_log_likelihood
from genzoo.evaluation.metrics import (
    ClassCoverage,
    ClassifierScore,
    ConditionalAccuracy,
    DenoisingGain,
    FrechetDistance,
    KernelDistance,
    PrecisionRecall,
    frechet_distance,
    polynomial_kernel,
    unbiased_mmd2,
)
from genzoo.models.base import ImportanceSampled


def random_gaussian(rng, dim, n):
    a = rng.normal(size=(dim, dim))
    return rng.normal(size=(n, dim)) @ a + rng.normal(size=dim)


def test_frechet_distance_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = random_gaussian(rng, 8, 500), random_gaussian(rng, 8, 400)
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    metric = FrechetDistance()
    for chunk in np.array_split(x, 3):  # accumulated over batches
        metric.update(torch.tensor(chunk), real=True)
    metric.update(torch.tensor(y), real=False)
    assert metric.compute()["fd"] == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.tensor(mu1), torch.tensor(s1), torch.tensor(mu2), torch.tensor(s2)) == pytest.approx(
        expected, rel=1e-6)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = torch.tensor(random_gaussian(np.random.default_rng(1), 16, 300))
    metric = FrechetDistance()
    metric.update(features, real=True)
    metric.update(features, real=False)
    assert abs(metric.compute()["fd"]) < 1e-6
    metric.reset()
    with pytest.raises(ValueError, match="at least 2"):
        metric.compute()


def test_unbiased_mmd_matches_brute_force():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)) + 0.5

    def k(a, b):
        return (a @ b / 4 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert unbiased_mmd2(torch.tensor(x), torch.tensor(y)) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert torch.allclose(polynomial_kernel(torch.tensor(x), torch.tensor(y))[2, 3], torch.tensor(k(x[2], y[3])))


def test_kid_is_unbiased_when_both_sets_come_from_one_distribution():
    generator = torch.Generator().manual_seed(3)
    values = torch.tensor([unbiased_mmd2(torch.randn(50, 3, generator=generator, dtype=torch.float64),
                                         torch.randn(50, 3, generator=generator, dtype=torch.float64))
                           for _ in range(400)])
    standard_error = values.std() / math.sqrt(len(values))
    assert abs(float(values.mean())) < 3 * standard_error  # unbiased: centred on 0
    assert (values < 0).any()  # so single estimates can be negative
    shifted = KernelDistance(num_subsets=20, subset_size=100)
    shifted.update(torch.randn(300, 3, generator=generator), real=True)
    shifted.update(torch.randn(300, 3, generator=generator) + 1.0, real=False)
    assert shifted.compute()["kid_x1000"] / 1000 > 100 * float(standard_error)


def toy_prdc(real, fake):
    metric = PrecisionRecall(k=5)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return metric.compute()


def test_precision_recall_density_coverage_on_toy_gaussians():
    generator = torch.Generator().manual_seed(4)
    real = torch.randn(2000, 16, generator=generator)
    same = toy_prdc(real, torch.randn(2000, 16, generator=generator))
    assert same["precision"] > 0.6 and same["recall"] > 0.6
    assert 0.85 < same["density"] < 1.15  # E[density] = 1 for identical distributions
    assert 0.94 < same["coverage"] < 0.99  # E[coverage] ~ 1 - 2^-k = 0.969 (Naeem et al. 2020)
    far = toy_prdc(real, torch.randn(2000, 16, generator=generator) + 20)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # Mode collapse: every sample sits near one real point: precise, but no recall or coverage.
    collapsed = toy_prdc(real, real[:1] + 0.01 * torch.randn(2000, 16, generator=generator))
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.01 and collapsed["coverage"] < 0.01


def test_classifier_score_and_class_coverage_see_mode_collapse():
    balanced = torch.eye(10).repeat(50, 1)  # confident, all classes equally
    collapsed = torch.eye(10)[torch.ones(500, dtype=torch.int64)]  # every sample a "1"
    uncertain = torch.full((500, 10), 0.1)
    scores = {}
    for name, probabilities in (("balanced", balanced), ("collapsed", collapsed), ("uncertain", uncertain)):
        score, coverage = ClassifierScore(), ClassCoverage(10)
        score.update(probabilities)
        coverage.update(probabilities)
        scores[name] = {**score.compute(), **coverage.compute()}
    assert scores["balanced"]["classifier_score"] == pytest.approx(10.0)
    assert scores["collapsed"]["classifier_score"] == pytest.approx(1.0)
    assert scores["uncertain"]["classifier_score"] == pytest.approx(1.0)
    assert scores["balanced"]["classes_covered"] == 10
    assert scores["balanced"]["class_entropy_bits"] == pytest.approx(math.log2(10))
    assert scores["collapsed"]["classes_covered"] == 1 and scores["collapsed"]["class_entropy_bits"] == 0


def test_conditional_accuracy_and_denoising_gain():
    accuracy = ConditionalAccuracy()
    accuracy.update(torch.eye(3)[torch.tensor([0, 1, 2, 2])], torch.tensor([0, 1, 2, 0]))
    assert accuracy.compute()["conditional_accuracy"] == 0.75
    gain = DenoisingGain()
    clean = torch.zeros(4, 1, 2, 2)
    gain.update(clean, clean + 1.0, clean + 0.1)
    assert gain.compute()["denoising_gain"] == pytest.approx(100.0)
    assert gain.compute()["denoising_gain_db"] == pytest.approx(20.0)


class LinearGaussian(ImportanceSampled):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I): log p(x) = log N(x; b, W W^T + s^2 I) exactly.
    q(z|x) is the exact posterior with its mean shrunk and its variance inflated (``exact=False``)
    so that importance sampling has something to fix."""

    def __init__(self, *, latent=3, data=6, noise=0.5, exact=False, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(data, latent, generator=g, dtype=torch.float64)
        self.b = torch.randn(data, generator=g, dtype=torch.float64)
        self.noise = noise
        self.posterior_cov = torch.linalg.inv(torch.eye(latent, dtype=torch.float64) + self.w.T @ self.w / noise**2)
        self.shrink, self.inflate = (1.0, 1.0) if exact else (0.7, 2.0)

    def exact_log_likelihood(self, x):
        cov = (self.w @ self.w.T + self.noise**2 * torch.eye(len(self.b), dtype=torch.float64)).numpy()
        return stats.multivariate_normal(mean=self.b.numpy(), cov=cov).logpdf(x.numpy())

    def log_importance_weights(self, images, labels, *, num_samples, generator):
        mean = self.shrink * (images - self.b) @ self.w @ self.posterior_cov / self.noise**2  # (B, d)
        cov = self.inflate * self.posterior_cov
        q = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
        eps = torch.randn((num_samples, *mean.shape), generator=generator, dtype=torch.float64)
        z = mean + eps @ torch.linalg.cholesky(cov).T  # (K, B, d)
        log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_lik = torch.distributions.Normal(z @ self.w.T + self.b, self.noise).log_prob(images).sum(-1)
        return log_lik + log_prior - q.log_prob(z)


def test_importance_sampled_nll_converges_to_the_exact_value():
    model = LinearGaussian()
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    exact_nll = -float(np.mean(model.exact_log_likelihood(x)))
    estimates = {}
    for k in (1, 10, 100, 5000):
        estimates[k] = estimate_log_likelihood(model, x, None, importance_samples=k, iwae_k=k,
                                               generator=torch.Generator().manual_seed(2))
    bounds = [estimates[k][f"neg_iwae_{k}"] for k in (1, 10, 100, 5000)]
    assert bounds == sorted(bounds, reverse=True)  # the IWAE bound rises with k (NLL bound falls)
    assert bounds[0] - exact_nll > 1.0  # the ELBO is loose with this poor q
    assert estimates[1]["neg_elbo"] == pytest.approx(estimates[1]["nll"])
    assert estimates[5000]["nll"] == pytest.approx(exact_nll, abs=0.05)
    assert all(bound >= exact_nll - 0.05 for bound in bounds)


def test_with_the_exact_posterior_every_weight_is_the_likelihood():
    model = LinearGaussian(exact=True)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    result = estimate_log_likelihood(model, x, None, importance_samples=50, iwae_k=10,
                                     generator=torch.Generator().manual_seed(4))
    exact_nll = -float(np.mean(model.exact_log_likelihood(x)))
    for name in ("nll", "neg_iwae_10", "neg_elbo"):
        assert result[name] == pytest.approx(exact_nll, abs=1e-9)


def test_bundled_evaluator_is_accurate_and_its_accuracy_is_the_real_images_conditional_accuracy(mnist_dir):
    from genzoo.data import load_dataset
    from genzoo.evaluation.evaluator import bundled_evaluator

    evaluator = bundled_evaluator("mnist")
    assert evaluator.version == "mnist-v1" and evaluator.test_accuracy >= 0.993
    test = load_dataset("mnist", "test", data_dir=mnist_dir)
    _, probabilities = evaluator.features_and_probabilities(test.images.float() / 255)
    accuracy = ConditionalAccuracy()
    accuracy.update(probabilities, test.labels)
    assert accuracy.compute()["conditional_accuracy"] == pytest.approx(evaluator.test_accuracy, abs=1e-6)
    assert bundled_evaluator("kmnist") is None  # not trained here: no KMNIST data on these machines
