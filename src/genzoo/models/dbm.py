"""Deep Boltzmann machine with two hidden layers (Salakhutdinov & Hinton 2009).

    E(v, h1, h2) = -b.v - c1.h1 - c2.h2 - v.W1.h1 - h1.W2.h2

Training: greedy pretraining of the two layers as RBMs with doubled conditionals (``pretrain_updates``
CD-1 updates each), then joint training where the data term uses mean-field inference (10
fixed-point sweeps of mu1 = sigmoid(c1 + v W1 + W2 mu2), mu2 = sigmoid(c2 + mu1 W2)) and the model
term persistent Gibbs chains over (v, h1, h2).

Likelihood: the test log-likelihood is the mean-field variational lower bound
    log p(v) >= E_q[-E(v, h1, h2)] + H(q) - log Z,
as in the paper, so the reported NLL is an upper bound up to the error in log Z. log Z is summed
over h1 alone (v and h2 summed out analytically) and estimated from both sides
(:func:`~genzoo.models.boltzmann.hidden_log_partition`): importance sampling from a mixture of the
test images' mean-field posteriors (a lower bound in expectation), reverse importance sampling
from the model's own Gibbs chains (an upper bound in expectation if the chains have mixed), and the
bridge between the two sets of draws (Meng & Wong 1996), consistent if the chains sample the model,
which the NLL uses; the other two give its interval. The paper's AIS (on p*(v, h2) with h1 summed out, from a
base-rate model) is reported beside them: its chains never reach the data's modes of a
well-trained DBM (for the 400-epoch recipe it gave 448.8, an impossible NLL of 57 nats, where the
bridge gives 476.8). The same three estimates on the RBM row, whose AIS converges, put the bridge
0.27 nats above AIS, the mixture 2.07 below and the reverse 2.09 above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import Count, Fraction, NonNegative, Rate, Size, Validated
from ..data import Batch, DataFormat, DataSpec, bernoulli
from .base import GenerativeModel, Metrics, PartitionFunctionModel, Sampler, VisibleFilters
from .boltzmann import (
    MIXTURE_SAMPLES,
    REVERSE_CHAINS,
    BaseRate,
    RBMLayer,
    ais_result,
    ais_schedule,
    annealing,
    contrastive_divergence,
    factorial_mixture,
    hidden_log_partition,
    likelihood_report,
    partition_checks,
    reconstruction_nats,
    sgd_with_momentum,
    softplus_difference,
)


@dataclass(frozen=True)
class DBMConfig(Validated):
    hidden_layers: tuple[Size, Size] = (500, 1000)  # the paper's 2-layer MNIST DBM
    pretrain_updates: Count = 6000  # CD-1 updates per layer before joint training (10 epochs of 100)
    mean_field_steps: Count = 10  # fixed-point sweeps for the data term
    persistent_chains: Count = 100  # the paper: 100 fantasy particles
    chain_steps: Count = 5  # Gibbs sweeps of the persistent chains per update (the paper: 5)
    chain_start: Literal["random", "data"] = "random"  # where the persistent chains start joint training
    pretrain_learning_rate: Rate = 0.05  # the two RBMs (as the `rbm` model's default)
    learning_rate: Rate = 0.001  # joint training (0.005 diverged here: samples collapsed onto two digits)
    momentum: Fraction = 0.9
    weight_decay: NonNegative = 2e-4
    binarize: Literal["dynamic", "static"] = "dynamic"
    gibbs_steps: Count = 1000  # sweeps per sample drawn by `sample`


def _entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log()).sum(1)


class DBM(GenerativeModel, Sampler, PartitionFunctionModel, VisibleFilters, BaseRate):
    few_classes_hint = ' (Gibbs chains mix slowly between classes)'

    def __init__(self, config: DBMConfig, spec: DataSpec):
        super().__init__(config, spec)
        hidden1, hidden2 = config.hidden_layers
        self.bottom = RBMLayer(spec.num_pixels, hidden1)  # W1, b, c1
        self.top = RBMLayer(hidden1, hidden2)  # W2, (its visible bias unused after pretraining), c2
        chains = config.persistent_chains
        self.register_buffer("chain_visible", torch.bernoulli(torch.full((chains, spec.num_pixels), 0.5)))
        self.register_buffer("chain_top", torch.bernoulli(torch.full((chains, hidden2), 0.5)))
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        self.init_base_rate(spec.num_pixels)

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="unit", binarize=self.config.binarize)

    def visible_filters(self) -> torch.Tensor:
        return self.bottom.weight.detach().T

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"model": sgd_with_momentum([self.bottom, self.top], learning_rate=c.learning_rate, momentum=c.momentum,
                                           weight_decay=c.weight_decay)}

    # -- conditionals -------------------------------------------------------------------------
    def h1_given(self, visible, top):
        return torch.sigmoid(visible @ self.bottom.weight + top @ self.top.weight.T + self.bottom.hidden_bias)

    def h2_given(self, middle):
        return torch.sigmoid(middle @ self.top.weight + self.top.hidden_bias)

    def mean_field(self, visible: torch.Tensor):
        """Fixed point of q(h1) q(h2): returns (mu1, mu2). Started from a bottom-up pass with
        doubled input to h1, which stands in for the missing top-down signal."""
        bottom_up = visible @ self.bottom.weight  # the same in every sweep: computed once
        mu1 = torch.sigmoid(2 * bottom_up + self.bottom.hidden_bias)
        mu2 = self.h2_given(mu1)
        for _ in range(self.config.mean_field_steps):
            mu1 = torch.sigmoid(bottom_up + mu2 @ self.top.weight.T + self.bottom.hidden_bias)  # as h1_given
            mu2 = self.h2_given(mu1)
        return mu1, mu2

    def gibbs_sweep(self, visible, top, generator):
        """(v, h2) -> h1 ~ p(h1|v, h2) -> v ~ p(v|h1), h2 ~ p(h2|h1); returns (v, h2, p(v|h1))."""
        middle = bernoulli(self.h1_given(visible, top), generator)
        probabilities = self.bottom.visible_probabilities(middle)
        visible = bernoulli(probabilities, generator)
        top = bernoulli(self.h2_given(middle), generator)
        return visible, top, probabilities

    # -- training -----------------------------------------------------------------------------
    @torch.no_grad()
    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        visible = batch.images.flatten(1)
        self.count_pixels(visible)
        phase = int(self.updates) // self.config.pretrain_updates
        for parameter in self.parameters():
            parameter.grad = None
        optimizer = optimizers["model"]
        if phase < 2:
            loss = self._pretrain(phase, visible, generator)
            optimizer.step()
        else:
            if int(self.updates) == 2 * self.config.pretrain_updates:
                self._compose(visible, optimizer, generator)
            mu1 = self._joint_gradient(visible, generator)
            loss = self._reconstruction_error(visible, mu1)  # the batch before the update: no second mean field
            optimizer.step()
        self.updates += 1
        return {"loss": loss, "phase": torch.tensor(float(min(phase, 2)))}

    def _pretrain(self, phase: int, visible: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Greedy pretraining as two RBMs with doubled conditionals (Salakhutdinov & Hinton 2009,
        sec. 3.1): in the DBM, h1 hears both v and h2, so the bottom RBM doubles its bottom-up input
        and the top RBM its top-down input, and neither layer counts the evidence twice once composed.

        Returns the training layer's own one-step reconstruction error (nats per image, summed over
        that layer's visible units), as the DBN does: the whole model's mean-field error would cost
        eleven sweeps a step, five times the CD-1 update itself; the test loss still measures it."""
        if phase == 0:
            layer, data, up, down = self.bottom, visible, 2.0, 1.0
        else:
            layer, up, down = self.top, 1.0, 2.0
            data = bernoulli(self.bottom.hidden_probabilities(visible, 2.0), generator)
        contrastive_divergence(layer, data, data, steps=1, generator=generator, up=up, down=down)
        for parameter in layer.parameters():  # the optimizer's rate is the joint one
            parameter.grad *= self.config.pretrain_learning_rate / self.config.learning_rate
        return layer.reconstruction_error(data, up, down)

    def _compose(self, visible: torch.Tensor, optimizer, generator: torch.Generator) -> None:
        """Start of joint training: h1's bias becomes the sum of the two RBMs' biases for it (each
        was trained doubled) and the momentum of the pretraining is dropped. The persistent chains
        start as noise by default: chains started from training images stay near the data, never
        visit the spurious modes a sampler started from noise falls into (one grey image, for every
        chain), and so never unlearn them; ``chain_start = "data"`` starts them from a batch and its
        mean-field h2."""
        self.bottom.hidden_bias += self.top.visible_bias  # the top RBM's own copy stays, unused from now on
        optimizer.state.clear()
        if self.config.chain_start == "data":
            rows = torch.arange(len(self.chain_visible), device=visible.device) % len(visible)
            self.chain_visible.copy_(visible[rows])
        else:
            self.chain_visible.copy_(bernoulli(torch.full_like(self.chain_visible, 0.5), generator))
        _, mu2 = self.mean_field(self.chain_visible)
        self.chain_top.copy_(bernoulli(mu2, generator))

    def _joint_gradient(self, visible: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Data term from mean-field q(h1) q(h2); model term from the persistent chains after
        ``chain_steps`` Gibbs sweeps (stochastic approximation, Salakhutdinov & Hinton 2009, sec. 2).
        Returns the data's mean-field q(h1)."""
        mu1, mu2 = self.mean_field(visible)
        chain_v, chain_top = self.chain_visible, self.chain_top
        for _ in range(self.config.chain_steps):
            chain_v, chain_top, _ = self.gibbs_sweep(chain_v, chain_top, generator)
        chain_mid = self.h1_given(chain_v, chain_top)
        n, m = len(visible), len(chain_v)
        self.bottom.weight.grad = -(visible.T @ mu1 / n - chain_v.T @ chain_mid / m)
        self.bottom.visible_bias.grad = -(visible.mean(0) - chain_v.mean(0))
        self.bottom.hidden_bias.grad = -(mu1.mean(0) - chain_mid.mean(0))
        self.top.weight.grad = -(mu1.T @ mu2 / n - chain_mid.T @ chain_top / m)
        self.top.hidden_bias.grad = -(mu2.mean(0) - chain_top.mean(0))
        self.chain_visible.copy_(chain_v)
        self.chain_top.copy_(chain_top)
        return mu1

    def _reconstruction_error(self, visible: torch.Tensor, mu1: torch.Tensor) -> torch.Tensor:
        return reconstruction_nats(self.bottom.visible_probabilities(mu1), visible)

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        """Mean-field reconstruction error (nats per image; a progress signal, not a likelihood)."""
        visible = batch.images.flatten(1)
        return {"loss": self._reconstruction_error(visible, self.mean_field(visible)[0])}

    # -- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """p(v|h1) after ``gibbs_steps`` sweeps from base-rate images and their mean-field h2."""
        return self.chain_states(num, generator)[2].view(-1, *self.spec.shape)

    @torch.no_grad()
    def chain_states(self, num: int, generator):
        """(v, h2, p(v|h1)) of ``num`` Gibbs chains after ``gibbs_steps`` sweeps from base-rate
        images and their mean-field h2."""
        visible = self.base_rate_sample(num, generator)
        top = bernoulli(self.mean_field(visible)[1], generator)
        for _ in range(self.config.gibbs_steps):
            visible, top, probabilities = self.gibbs_sweep(visible, top, generator)
        return visible, top, probabilities

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), generator=generator)

    # -- likelihood ---------------------------------------------------------------------------
    @torch.no_grad()
    def variational_bound(self, visible: torch.Tensor) -> torch.Tensor:
        """E_q[-E(v, h1, h2)] + H(q) per image (B,): log p*(v) >= this."""
        mu1, mu2 = self.mean_field(visible)
        energy = (visible @ self.bottom.visible_bias + mu1 @ self.bottom.hidden_bias + mu2 @ self.top.hidden_bias
                  + ((visible @ self.bottom.weight) * mu1).sum(1) + ((mu1 @ self.top.weight) * mu2).sum(1))
        return energy + _entropy(mu1) + _entropy(mu2)

    def annealed_path(self, dtype=torch.float32):
        """The base-rate path of :meth:`ais_log_partition` over x = (v, h2), h1 summed out:
            log f_beta(v, h2) = (1 - beta) b_A.v + beta (b.v + c2.h2) + sum_j softplus(beta a_j),
            a = c1 + v W1 + W2 h2,
        from f_0 (the base-rate model, normalised by log Z_A) to f_1 = p*(v, h2). Returns
        (log Z_A, activation(v, h2) -> a, increment(v, h2, a, beta, beta') = log f_beta(x) -
        log f_beta'(x) in float64, transition(a, beta, generator) -> (v, h2)). The transition draws
        h1 ~ p_beta(h1 | v, h2), then v ~ p_beta(v | h1) and h2 ~ p_beta(h2 | h1); summed over h1 it
        is symmetric in f_beta: f_beta(x) K(x -> x') = sum_h1 p_beta(x, h1) p_beta(x' | h1) / Z'."""
        w1, w2 = self.bottom.weight.to(dtype), self.top.weight.to(dtype)
        b, c1, c2 = (t.to(dtype) for t in (self.bottom.visible_bias, self.bottom.hidden_bias, self.top.hidden_bias))
        base = self.base_rate().to(dtype)
        log_z_base = float(F.softplus(base.double()).sum()) + sum(w2.shape) * math.log(2.0)
        visible_term, top_term = (b - base).double(), c2.double()

        def activation(v, h2):
            return torch.addmm(c1, v, w1) + h2 @ w2.T

        def increment(v, h2, a, beta, beta_previous):
            return ((beta - beta_previous) * (v.double() @ visible_term + h2.double() @ top_term)
                    + softplus_difference(a, beta, beta_previous))

        def transition(a, beta, generator):
            h1 = bernoulli(torch.sigmoid(beta * a), generator)
            v = bernoulli(torch.sigmoid((1 - beta) * base + beta * torch.addmm(b, h1, w1.T)), generator)
            return v, bernoulli(torch.sigmoid(beta * torch.addmm(c2, h1, w2)), generator)

        return log_z_base, activation, increment, transition

    @torch.no_grad()
    def ais_log_partition(self, *, num_chains: int, num_steps: int, generator, runs: int = 1,
                          progress: bool = False) -> dict[str, float]:
        """log Z by AIS along :meth:`annealed_path`, ``runs`` independent runs of ``num_chains``
        chains started from f_0: log w = sum_k log f_k(x_(k-1)) - log f_(k-1)(x_(k-1)), x_k ~ K_k(x_(k-1)).
        Float32 chains, float64 weights, as :func:`~genzoo.models.boltzmann.ais_log_partition`."""
        log_z_base, activation, increment, transition = self.annealed_path()
        chains = runs * num_chains
        base = self.base_rate().float()
        v = bernoulli(torch.sigmoid(base).expand(chains, -1), generator)
        h2 = bernoulli(torch.full((chains, self.top.weight.shape[1]), 0.5, device=base.device), generator)
        log_w = torch.zeros(chains, dtype=torch.float64, device=base.device)
        for beta_previous, beta in annealing(ais_schedule(num_steps).tolist(), progress):
            a = activation(v, h2)
            log_w += increment(v, h2, a, beta, beta_previous)
            v, h2 = transition(a, beta, generator)
        return ais_result(log_w, log_z_base, runs=runs)

    @torch.no_grad()
    def reverse_annealed_log_likelihood(self, visible: torch.Tensor, *, num_steps: int, generator,
                                        floor: float = 1e-3, progress: bool = False) -> torch.Tensor:
        """RAISE (Burda, Grosse & Salakhutdinov 2015): log p(v) per row (B,) by annealing from each
        image back to the base-rate model along :meth:`annealed_path`. The annealed model draws x_0
        from f_0 / Z_A and x_k ~ K_k(x_(k-1)), k = 1..M; its marginal p_ann(v) of v_M is what is
        estimated. The reverse chain starts at x_M = (v, h2), h2 ~ q(h2 | v) (the mean field,
        clamped to [floor, 1 - floor]), and draws x_(k-1) ~ K_k(x_k); since each K_k is reversible
        in f_k, the importance weight of the annealed model's path against it is
            log w = log f_M(v, h2) - log q(h2 | v) - log Z_A - sum_(k<M) [log f_(k+1)(x_k) - log f_k(x_k)],
        with E[w] = p_ann(v) exactly: E[log w] <= log p_ann(v). p_ann approaches p as the schedule
        lengthens; where the chains cannot reach the data's modes from the base rate (the AIS failure
        of the zoo's DBM), p_ann is a worse model than p and the estimate errs low: conservative."""
        log_z_base, activation, increment, transition = self.annealed_path(visible.dtype)
        mu2 = self.mean_field(visible)[1].clamp(floor, 1 - floor)
        v, h2 = visible, bernoulli(mu2, generator)
        a = activation(v, h2)
        log_q = (h2 * mu2.log() + (1 - h2) * (1 - mu2).log()).double().sum(1)
        log_f = (v @ self.bottom.visible_bias + h2 @ self.top.hidden_bias).double() + F.softplus(a).double().sum(1)
        log_w = log_f - log_q - log_z_base
        for beta, beta_previous in annealing(ais_schedule(num_steps).flip(0).tolist(), progress):
            v, h2 = transition(a, beta, generator)
            a = activation(v, h2)
            log_w -= increment(v, h2, a, beta, beta_previous)
        return log_w

    @torch.no_grad()
    def importance_log_p_star(self, visible: torch.Tensor, *, samples: int, generator, floor: float = 1e-6,
                              chunk: int = 100) -> torch.Tensor:
        """log p*(v) per image (B,) by importance sampling h1 from its mean-field posterior q(h1|v)
        (clamped to [floor, 1 - floor]), h2 summed out analytically:
            log p*(v, h1) = b.v + c1.h1 + v W1 h1 + sum_k softplus((c2 + h1 W2)_k),
            log p*(v) ~= log (1/K) sum_k p*(v, h1_k) / q(h1_k|v):
        in expectation a lower bound on log p*(v) and, by Jensen, at least the bound over h1 alone,
        E_q[log p*(v, h1) - log q(h1|v)], which is itself above :meth:`variational_bound`."""
        mu = self.mean_field(visible)[0].clamp(floor, 1 - floor)
        logit, log_off = (mu.log() - (1 - mu).log()).double(), (1 - mu).log().sum(1).double()
        visible_term, bottom_up = (visible @ self.bottom.visible_bias).double(), visible @ self.bottom.weight
        bottom_up = bottom_up + self.bottom.hidden_bias
        weights = []
        for start in range(0, samples, chunk):
            middle = bernoulli(mu.expand(min(chunk, samples - start), -1, -1), generator)  # (k, B, H1)
            log_joint = (visible_term + (middle * bottom_up).sum(-1).double()
                         + F.softplus(middle @ self.top.weight + self.top.hidden_bias).sum(-1).double())
            weights.append(log_joint - ((middle.double() * logit).sum(-1) + log_off))
        return torch.logsumexp(torch.cat(weights), 0) - math.log(samples)

    @torch.no_grad()
    def log_p_star_h1(self, middle: torch.Tensor) -> torch.Tensor:
        """log p*(h1) = c1.h1 + sum_i softplus((b + W1 h1)_i) + sum_j softplus((c2 + h1 W2)_j), in
        float64: v and h2 summed out analytically (both are independent given h1)."""
        middle = middle.double()
        b, c1, c2 = (x.double() for x in (self.bottom.visible_bias, self.bottom.hidden_bias, self.top.hidden_bias))
        return (middle @ c1 + F.softplus(middle @ self.bottom.weight.double().T + b).sum(1)
                + F.softplus(middle @ self.top.weight.double() + c2).sum(1))

    @torch.no_grad()
    def posterior_mixture(self, visible: torch.Tensor):
        """The mixture of the mean-field posteriors q(h1) of ``visible`` (:func:`factorial_mixture`)."""
        return factorial_mixture(self.mean_field(visible)[0])

    @torch.no_grad()
    def chain_hidden(self, num: int, generator) -> torch.Tensor:
        """h1 ~ p(h1 | v, h2) of ``num`` Gibbs chains after ``gibbs_steps`` sweeps from base-rate
        images (as :meth:`sample`): draws from p(h1) if the chains have mixed."""
        chain_v, top, _ = self.chain_states(num, generator)
        return bernoulli(self.h1_given(chain_v, top), generator)

    @torch.no_grad()
    def estimate_log_likelihood(self, images, *, num_chains: int, num_steps: int, generator, runs: int = 1,
                                progress: bool = False) -> dict:
        visible = images.flatten(1).to(self.bottom.weight.device)
        ais = self.ais_log_partition(num_chains=num_chains, num_steps=num_steps, generator=generator, runs=runs,
                                     progress=progress)
        estimates = hidden_log_partition(self.log_p_star_h1, self.posterior_mixture(visible), self.chain_hidden,
                                         samples=MIXTURE_SAMPLES, chains=REVERSE_CHAINS, generator=generator, runs=runs)
        # The bridge is the estimate; the mixture's (from below) and the reverse (from above) its interval.
        partition = {"log_z": estimates["bridge"], "log_z_low": estimates["mixture"]["log_z"],
                     "log_z_high": estimates["reverse"], "log_z_runs": estimates["bridge_runs"],
                     "log_z_run_mean": estimates["bridge_run_mean"], "log_z_run_std": estimates["bridge_run_std"]}
        bound = float(self.variational_bound(visible).double().mean())
        report = likelihood_report(bound, partition, num_chains=num_chains, num_steps=num_steps, runs=runs,
                                   num_images=len(images))
        return {**report, **partition_checks(estimates, bound), "log_z_ais": ais["log_z"], "nll_ais": ais["log_z"] - bound,
                "log_z_estimator": "bridge", "log_z_ais_runs": ais["log_z_runs"], "mixture_samples": MIXTURE_SAMPLES,
                "reverse_chains": REVERSE_CHAINS}
