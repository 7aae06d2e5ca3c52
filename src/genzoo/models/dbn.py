"""Deep belief net: RBMs stacked greedily (Hinton, Osindero & Teh 2006).

The first RBM models the pixels; each next RBM models the hidden activations of the one below,
and trains only after the one below has had ``updates_per_layer`` updates (the top RBM trains for
the rest of the run, by CD or, with ``persistent_top``, by persistent CD).
Sampling runs a Gibbs chain in the top RBM, then one down pass through the
lower layers' generative weights, p(h_{l-1} | h_l) = sigmoid(b_{l-1} + W_l h_l).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import Count, Fraction, NonNegative, Rate, Size, Validated
from ..data import Batch, DataFormat, DataSpec, bernoulli
from .base import GenerativeModel, Metrics, Sampler, VisibleFilters
from .boltzmann import (
    BaseRate,
    RBMLayer,
    contrastive_divergence,
    reconstruction_nats,
    sgd_with_momentum,
)


@dataclass(frozen=True)
class DBNConfig(Validated):
    hidden_layers: tuple[Size, ...] = (500, 500)  # two layers; (500, 500, 2000) is Hinton et al.'s three
    updates_per_layer: Count = 6000  # greedy schedule: 10 epochs of batch 100 per lower layer
    cd_steps: Count = 1
    persistent_top: bool = False  # train the top RBM by PCD (Tieleman 2008) instead of CD
    persistent_chains: Count = 100
    learning_rate: Rate = 0.05
    momentum: Fraction = 0.9
    weight_decay: NonNegative = 1e-4
    binarize: Literal["dynamic", "static"] = "dynamic"
    gibbs_steps: Count = 1000  # Gibbs sweeps in the top RBM per sample


class DBN(GenerativeModel, Sampler, VisibleFilters, BaseRate):
    few_classes_hint = ' (Gibbs chains in the top layer mix slowly between classes)'

    def __init__(self, config: DBNConfig, spec: DataSpec):
        super().__init__(config, spec)
        if len(config.hidden_layers) < 2:
            raise ValueError("a deep belief net needs at least 2 hidden layers; use `rbm` for one")
        sizes = (spec.num_pixels, *config.hidden_layers)
        self.layers = nn.ModuleList(RBMLayer(v, h) for v, h in zip(sizes[:-1], sizes[1:], strict=True))
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))  # drives the greedy schedule
        # The top RBM's persistent chains (PCD), started from the data's up-pass when that layer starts.
        self.register_buffer("chains", torch.zeros(config.persistent_chains, sizes[-2]))
        self.init_base_rate(spec.num_pixels)  # pixel means: where sampling starts

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="unit", binarize=self.config.binarize)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"model": sgd_with_momentum(list(self.layers), learning_rate=c.learning_rate, momentum=c.momentum,
                                           weight_decay=c.weight_decay)}

    def visible_filters(self) -> torch.Tensor:
        return self.layers[0].weight.detach().T

    def training_layer(self) -> int:
        return min(int(self.updates) // self.config.updates_per_layer, len(self.layers) - 1)

    def up(self, visible: torch.Tensor, depth: int, generator: torch.Generator | None) -> torch.Tensor:
        """Binary states of hidden layer ``depth`` (0 = the pixels) for data, sampled layer by layer."""
        state = visible
        for layer in self.layers[:depth]:
            state = bernoulli(layer.hidden_probabilities(state), generator)
        return state

    @torch.no_grad()
    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        depth = self.training_layer()
        pixels = batch.images.flatten(1)
        self.count_pixels(pixels)
        visible = self.up(pixels, depth, generator)
        layer = self.layers[depth]
        for other in self.layers:  # only the layer in training moves (momentum buffers stay put)
            for parameter in other.parameters():
                parameter.grad = None
        if self.config.persistent_top and depth == len(self.layers) - 1:
            if int(self.updates) == depth * self.config.updates_per_layer:  # the top layer's first update
                self.chains.copy_(visible[torch.arange(len(self.chains), device=visible.device) % len(visible)])
            self.chains.copy_(contrastive_divergence(layer, visible, self.chains, steps=self.config.cd_steps,
                                                     generator=generator))
        else:
            contrastive_divergence(layer, visible, visible, steps=self.config.cd_steps, generator=generator)
        optimizers["model"].step()
        self.updates += 1
        return {"loss": layer.reconstruction_error(visible), "layer": torch.tensor(float(depth + 1))}

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        """Reconstruction error of the pixels through the whole stack and back (nats per image)."""
        state = batch.images.flatten(1)
        for layer in self.layers:
            state = layer.hidden_probabilities(state)
        for layer in reversed(self.layers):
            state = layer.visible_probabilities(state)
        return {"loss": reconstruction_nats(state, batch.images.flatten(1))}

    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """Gibbs in the top RBM from the up-pass of base-rate images, then a down pass: p(v | h_1)."""
        top = self.layers[-1]
        state = self.up(self.base_rate_sample(num, generator), len(self.layers) - 1, generator)
        for _ in range(self.config.gibbs_steps):
            state, _ = top.gibbs_step(state, generator)
        for layer in reversed(self.layers[:-1]):
            probabilities = layer.visible_probabilities(state)
            state = bernoulli(probabilities, generator)
        return probabilities.view(-1, *self.spec.shape)

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), generator=generator)
