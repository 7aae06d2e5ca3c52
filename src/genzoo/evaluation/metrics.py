"""Metric objects with ``update`` / ``compute`` / ``reset``.

The distances take *features* and the classifier scores take *class probabilities*, both from the
evaluator network (:mod:`genzoo.evaluation.evaluator`), so that one pass of the evaluator over a set
of images serves every metric. :class:`genzoo.evaluation.suite` does that pass.
"""

from __future__ import annotations

import abc
import math

import torch


class Metric(abc.ABC):
    """Accumulates over batches; ``compute`` returns a dict of floats."""

    def __init__(self):
        self.reset()

    @abc.abstractmethod
    def reset(self) -> None: ...

    @abc.abstractmethod
    def compute(self) -> dict[str, float]: ...


def _require(count: int, needed: int, what: str) -> None:
    if count < needed:
        raise ValueError(f"{what}: needs at least {needed} samples, has {count}")


# -- distances between feature distributions ------------------------------------------------
def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) (Dowson & Landau 1982;
    Heusel et al. 2017). The square root is taken of a symmetric PSD matrix by eigendecomposition,
    which is stabler than the non-symmetric product S1 S2."""
    mean1, cov1, mean2, cov2 = (t.double() for t in (mean1, cov1, mean2, cov2))
    values, vectors = torch.linalg.eigh(cov1)
    sqrt_cov1 = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    middle = sqrt_cov1 @ cov2 @ sqrt_cov1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mean1 - mean2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt)


class FrechetDistance(Metric):
    """Frechet distance between Gaussians fitted to real and generated features (FID's formula,
    on the evaluator's features). Running sums in float64: memory does not grow with N."""

    def reset(self) -> None:
        self.sums = {True: None, False: None}  # real -> (count, sum, outer-product sum)

    def update(self, features: torch.Tensor, *, real: bool) -> None:
        features = features.double()
        count, total, outer = self.sums[real] or (0, 0.0, 0.0)
        self.sums[real] = (count + len(features), total + features.sum(0), outer + features.T @ features)

    def _moments(self, real: bool):
        _require(self.sums[real][0] if self.sums[real] else 0, 2, "FrechetDistance")
        count, total, outer = self.sums[real]
        mean = total / count
        cov = (outer - count * torch.outer(mean, mean)) / (count - 1)
        return mean, cov

    def compute(self) -> dict[str, float]:
        return {"fd": frechet_distance(*self._moments(True), *self._moments(False))}


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / d + 1)^3, the kernel of KID (Binkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimator of MMD^2 with the polynomial kernel, for equal-size sets
    (Gretton et al. 2012, eq. 3): diagonal terms of k(x, x) and k(y, y) are left out."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


class KernelDistance(Metric):
    """Kernel distance (KID): the unbiased MMD^2 averaged over ``num_subsets`` random subsets of
    ``subset_size`` from each set, drawn with an explicit generator. Reported x 1000 as usual."""

    def __init__(self, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0):
        self.num_subsets, self.subset_size, self.seed = num_subsets, subset_size, seed
        super().__init__()

    def reset(self) -> None:
        self.features = {True: [], False: []}

    def update(self, features: torch.Tensor, *, real: bool) -> None:
        self.features[real].append(features.double().cpu())

    def compute(self) -> dict[str, float]:
        real, fake = torch.cat(self.features[True]), torch.cat(self.features[False])
        size = min(self.subset_size, len(real), len(fake))
        _require(size, 2, "KernelDistance")
        generator = torch.Generator().manual_seed(self.seed)
        values = torch.tensor([
            unbiased_mmd2(real[torch.randperm(len(real), generator=generator)[:size]],
                          fake[torch.randperm(len(fake), generator=generator)[:size]])
            for _ in range(self.num_subsets)
        ])
        return {"kid_x1000": 1000 * float(values.mean()), "kid_std_x1000": 1000 * float(values.std())}


def _kth_neighbour_distances(points: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point (N,)."""
    radii = []
    for rows in points.split(chunk):
        distances = torch.cdist(rows, points)  # (chunk, N), includes the point itself at 0
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


class PrecisionRecall(Metric):
    """Precision, recall, density and coverage with k-nearest-neighbour balls (k = 5)
    (Kynkaanniemi et al. 2019; Naeem et al. 2020).

    precision: share of generated samples inside some real sample's k-NN ball;
    recall: share of real samples inside some generated sample's k-NN ball;
    density: mean number of real balls containing a generated sample, divided by k;
    coverage: share of real balls that contain at least one generated sample.
    """

    def __init__(self, *, k: int = 5, chunk: int = 1024):
        self.k, self.chunk = k, chunk
        super().__init__()

    def reset(self) -> None:
        self.features = {True: [], False: []}

    def update(self, features: torch.Tensor, *, real: bool) -> None:
        self.features[real].append(features.float().cpu())

    def compute(self) -> dict[str, float]:
        real, fake = torch.cat(self.features[True]), torch.cat(self.features[False])
        _require(min(len(real), len(fake)), self.k + 1, "PrecisionRecall")
        real_radii = _kth_neighbour_distances(real, self.k, self.chunk)  # (R,)
        fake_radii = _kth_neighbour_distances(fake, self.k, self.chunk)  # (F,)
        inside_count = torch.zeros(len(fake))  # real balls containing each fake sample
        real_covered = torch.zeros(len(real), dtype=torch.bool)
        recalled = torch.zeros(len(real), dtype=torch.bool)
        for start in range(0, len(fake), self.chunk):
            distances = torch.cdist(fake[start : start + self.chunk], real)  # (chunk, R)
            inside = distances <= real_radii[None, :]
            inside_count[start : start + self.chunk] = inside.sum(1).float()
            real_covered |= inside.any(0)
            recalled |= (distances <= fake_radii[start : start + self.chunk, None]).any(0)
        return {
            "precision": float((inside_count > 0).float().mean()),
            "recall": float(recalled.float().mean()),
            "density": float(inside_count.mean() / self.k),
            "coverage": float(real_covered.float().mean()),
        }


# -- classifier-based scores ----------------------------------------------------------------
class ClassifierScore(Metric):
    """exp(E_x KL(p(y|x) || p(y))), the Inception-score formula on the evaluator's softmax
    (Salimans et al. 2016). Between 1 and the number of classes; high when samples are both
    confidently classified and spread over the classes."""

    def reset(self) -> None:
        self.probabilities = []

    def update(self, probabilities: torch.Tensor) -> None:
        self.probabilities.append(probabilities.double().cpu())

    def compute(self) -> dict[str, float]:
        p = torch.cat(self.probabilities).clamp(min=1e-12)
        marginal = p.mean(0, keepdim=True)
        kl = (p * (p.log() - marginal.log())).sum(1).mean()
        return {"classifier_score": float(kl.exp())}


class ClassCoverage(Metric):
    """How many classes the samples cover: a class counts when at least ``min_share`` of a
    uniform share of the samples (1 / K) is classified as it; and the entropy of the
    predicted-class histogram in bits (log2 K for a perfectly balanced model, 0 for a collapsed one)."""

    def __init__(self, num_classes: int, *, min_share: float = 0.1):
        self.num_classes, self.min_share = num_classes, min_share
        super().__init__()

    def reset(self) -> None:
        self.histogram = torch.zeros(self.num_classes, dtype=torch.int64)

    def update(self, probabilities: torch.Tensor) -> None:
        self.histogram += torch.bincount(probabilities.argmax(1).cpu(), minlength=self.num_classes)

    def compute(self) -> dict[str, float]:
        share = self.histogram.double() / self.histogram.sum()
        covered = int((share >= self.min_share / self.num_classes).sum())
        nonzero = share[share > 0]
        entropy = float(-(nonzero * nonzero.log2()).sum())
        return {"classes_covered": covered, "class_entropy_bits": entropy,
                "class_entropy_max_bits": math.log2(self.num_classes)}


class ConditionalAccuracy(Metric):
    """Share of samples drawn for label y that the evaluator classifies as y."""

    def reset(self) -> None:
        self.correct, self.count = 0, 0

    def update(self, probabilities: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct += int((probabilities.argmax(1).cpu() == labels.cpu()).sum())
        self.count += len(labels)

    def compute(self) -> dict[str, float]:
        _require(self.count, 1, "ConditionalAccuracy")
        return {"conditional_accuracy": self.correct / self.count}


# -- reconstruction -------------------------------------------------------------------------
class ReconstructionError(Metric):
    """Mean squared error per pixel and binary cross-entropy per image (nats) of reconstructions
    of [0, 1] images."""

    def reset(self) -> None:
        self.squared, self.cross_entropy, self.pixels, self.images = 0.0, 0.0, 0, 0

    def update(self, originals: torch.Tensor, reconstructions: torch.Tensor) -> None:
        self.squared += float((reconstructions - originals).pow(2).sum())
        clamped = reconstructions.clamp(1e-6, 1 - 1e-6)
        bce = -(originals * clamped.log() + (1 - originals) * (1 - clamped).log())
        self.cross_entropy += float(bce.sum())
        self.pixels += originals.numel()
        self.images += len(originals)

    def compute(self) -> dict[str, float]:
        _require(self.images, 1, "ReconstructionError")
        return {"reconstruction_mse": self.squared / self.pixels, "reconstruction_bce": self.cross_entropy / self.images}


class DenoisingGain(Metric):
    """How much of the corruption a denoiser removes: MSE(noisy, clean) / MSE(denoised, clean),
    also in decibels (10 log10 of the ratio)."""

    def reset(self) -> None:
        self.noisy_error, self.denoised_error = 0.0, 0.0

    def update(self, clean: torch.Tensor, noisy: torch.Tensor, denoised: torch.Tensor) -> None:
        self.noisy_error += float((noisy - clean).pow(2).sum())
        self.denoised_error += float((denoised - clean).pow(2).sum())

    def compute(self) -> dict[str, float]:
        ratio = self.noisy_error / max(self.denoised_error, 1e-12)
        return {"denoising_gain": ratio, "denoising_gain_db": 10 * math.log10(ratio)}
