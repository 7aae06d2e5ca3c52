"""Restricted Boltzmann machine with binary visible and hidden units (Smolensky 1986; Hinton 2002),
trained by contrastive divergence (CD-k) or persistent CD (PCD-k, Tieleman 2008) with momentum and
weight decay: the gradient is filled in from Gibbs-chain statistics, with no autograd.

Samples come from Gibbs chains; the log-likelihood from annealed importance sampling of log Z
(Salakhutdinov & Murray 2008), checked from both sides by the estimates over h that the DBM's
likelihood rests on (a posterior mixture, the model's chains, the bridge between them). Pixels are
binarised (dynamically by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..config import Count, Fraction, NonNegative, Rate, Size, Validated
from ..data import Batch, DataFormat, DataSpec, bernoulli
from .base import GenerativeModel, Metrics, PartitionFunctionModel, Sampler, VisibleFilters
from .boltzmann import (
    MIXTURE_SAMPLES,
    REVERSE_CHAINS,
    BaseRate,
    RBMLayer,
    ais_log_partition,
    contrastive_divergence,
    factorial_mixture,
    hidden_log_partition,
    likelihood_report,
    partition_checks,
    sgd_with_momentum,
)


@dataclass(frozen=True)
class RBMConfig(Validated):
    hidden_units: Size = 500  # Salakhutdinov & Murray 2008 report 500
    cd_steps: Count = 1  # k of CD-k / PCD-k (the paper's best RBM: CD-25)
    persistent: bool = False  # PCD: negative chains persist across updates
    persistent_chains: Count = 100  # number of persistent chains (PCD only)
    learning_rate: Rate = 0.05
    momentum: Fraction = 0.9  # Hinton 2010: 0.5 at first, then 0.9
    weight_decay: NonNegative = 1e-4  # L2 on the weights (Hinton 2010: 1e-2 .. 1e-5)
    binarize: Literal["dynamic", "static"] = "dynamic"
    gibbs_steps: Count = 1000  # Gibbs sweeps per sample drawn by `sample`


class RBM(GenerativeModel, Sampler, PartitionFunctionModel, VisibleFilters, BaseRate):
    few_classes_hint = ' (Gibbs chains mix slowly between classes)'

    def __init__(self, config: RBMConfig, spec: DataSpec):
        super().__init__(config, spec)
        self.layer = RBMLayer(spec.num_pixels, config.hidden_units)
        # Persistent chains are state: saved, restored on resume. Started as fair coin flips.
        self.register_buffer("chains", torch.bernoulli(torch.full((config.persistent_chains, spec.num_pixels), 0.5)))
        self.init_base_rate(spec.num_pixels)  # pixel means: AIS's base-rate model, the samplers' start

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="unit", binarize=self.config.binarize)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"model": sgd_with_momentum([self.layer], learning_rate=c.learning_rate, momentum=c.momentum,
                                           weight_decay=c.weight_decay)}

    def visible_filters(self) -> torch.Tensor:
        return self.layer.weight.detach().T

    @torch.no_grad()
    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        visible = batch.images.flatten(1)  # (B, C, H, W) -> (B, V)
        self.count_pixels(visible)
        start = self.chains if self.config.persistent else visible
        end = contrastive_divergence(self.layer, visible, start, steps=self.config.cd_steps, generator=generator)
        if self.config.persistent:
            self.chains.copy_(end)
        optimizers["model"].step()
        return {"loss": self.layer.reconstruction_error(visible), "free_energy": self.layer.free_energy(visible).mean()}

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        visible = batch.images.flatten(1)
        return {"loss": self.layer.reconstruction_error(visible), "free_energy": self.layer.free_energy(visible).mean()}

    @torch.no_grad()
    def gibbs_chain(self, start: torch.Tensor, steps: int, generator: torch.Generator | None,
                    record: list[int] | None = None) -> list[torch.Tensor]:
        """Run Gibbs sweeps from ``start`` (B, V); returns p(v|h) after each step in ``record``
        (default: only the last), as images (B, C, H, W)."""
        record = record or [steps]
        visible, shown = start, []
        if 0 in record:
            shown.append(start.view(-1, *self.spec.shape))
        for step in range(1, steps + 1):
            visible, probabilities = self.layer.gibbs_step(visible, generator)
            if step in record:
                shown.append(probabilities.view(-1, *self.spec.shape))
        return shown

    def random_start(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        """Random binary images, each pixel on with its training-set frequency (the base rate)."""
        return self.base_rate_sample(num, generator)

    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """p(v|h) after ``gibbs_steps`` sweeps from random binary images."""
        return self.gibbs_chain(self.random_start(num, generator), self.config.gibbs_steps, generator)[-1]

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), generator=generator)

    def ais_log_partition(self, *, num_chains: int, num_steps: int, generator, runs: int = 1,
                          progress: bool = False) -> dict[str, float]:
        return ais_log_partition(self.layer, self.base_rate(), num_chains=num_chains, num_steps=num_steps,
                                 generator=generator, runs=runs, progress=progress)

    @torch.no_grad()
    def posterior_mixture(self, visible: torch.Tensor):
        """The mixture of the posteriors p(h | v) of ``visible`` (:func:`factorial_mixture`)."""
        return factorial_mixture(self.layer.hidden_probabilities(visible))

    @torch.no_grad()
    def chain_hidden(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        """h ~ p(h | v) of ``num`` Gibbs chains after ``gibbs_steps`` sweeps from random binary
        images (as :meth:`sample`): draws from p(h) if the chains have mixed."""
        visible = self.random_start(num, generator)
        for _ in range(self.config.gibbs_steps):
            visible, _ = self.layer.gibbs_step(visible, generator)
        return bernoulli(self.layer.hidden_probabilities(visible), generator)

    @torch.no_grad()
    def estimate_log_likelihood(self, images, *, num_chains: int, num_steps: int, generator, runs: int = 1,
                                progress: bool = False) -> dict:
        """The NLL with log Z by AIS (the paper's), and beside it log Z over h from both sides
        (:func:`~genzoo.models.boltzmann.hidden_log_partition`, the posterior mixture of ``images``):
        the check of the estimates that the DBM's NLL rests on, on a model whose AIS converges."""
        visible = images.flatten(1).to(self.layer.weight.device)
        partition = self.ais_log_partition(num_chains=num_chains, num_steps=num_steps, generator=generator, runs=runs,
                                           progress=progress)
        log_p_star = -float(self.layer.free_energy(visible).double().mean())
        estimates = hidden_log_partition(self.layer.hidden_log_p_star, self.posterior_mixture(visible), self.chain_hidden,
                                         samples=MIXTURE_SAMPLES, chains=REVERSE_CHAINS, generator=generator, runs=runs)
        report = likelihood_report(log_p_star, partition, num_chains=num_chains, num_steps=num_steps, runs=runs,
                                   num_images=len(images))
        return {**report, **partition_checks(estimates, log_p_star), "nll_bridge_run_std": estimates["bridge_run_std"],
                "log_z_estimator": "AIS", "log_z_bridge_runs": estimates["bridge_runs"], "mixture_samples": MIXTURE_SAMPLES,
                "reverse_chains": REVERSE_CHAINS}
