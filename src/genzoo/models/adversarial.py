"""The two-player game shared by every adversarial model (GAN, DCGAN, CGAN, LAPGAN levels, the
context encoder): the losses, and one iteration of Goodfellow et al. (2014), Algorithm 1.

One generator forward pass serves the whole iteration: its output, detached, is the fake half of
the ``k`` discriminator steps, and with its graph it feeds the generator step (through the updated
discriminator). Nothing is generated twice.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Between, ConfigError, Fraction, NonNegative, Rate, Validated
from ..data import Batch, DataFormat, DataSpec, to_unit_range
from .base import GenerativeModel, Metrics, Sampler
from .layers import adam


@dataclass(frozen=True)
class AdversarialTraining(Validated):
    """Fields every adversarial model's config shares (model configs inherit them)."""

    # "logistic": the discriminator's cross-entropy (Goodfellow et al. 2014), the generator's loss as
    # generator_loss says. "hinge": D minimises E relu(1 - D(x)) + E relu(1 + D(G(z))) on its logits
    # and G minimises -E D(G(z)) (Lim & Ye 2017; Miyato et al. 2018); generator_loss and
    # label_smoothing do not apply.
    adversarial_loss: Literal["logistic", "hinge"] = "logistic"
    generator_loss: Literal["non-saturating", "minimax"] = "non-saturating"  # -log D(G(z)) or log(1 - D(G(z)))
    label_smoothing: Fraction = 0.0  # one-sided: real targets 1 - label_smoothing (Salimans et al. 2016: 0.1)
    discriminator_steps: typing.Annotated[int, Between(1, 100)] = 1  # k discriminator steps per generator step; the batch is split into k
    learning_rate: Rate = 2e-4  # Adam for both players (Radford et al. 2016)
    generator_rate_ratio: Rate = 1.0  # the generator's rate as a multiple of learning_rate (Heusel et al. 2017: two rates)
    beta1: Fraction = 0.5  # Adam's beta1; Radford et al.: 0.9 oscillates and is unstable, 0.5 trains
    # gamma of the R1 penalty (Mescheder et al. 2018): the discriminator's loss gains
    # gamma / 2 * E ||grad_x l(x)||^2 over real images x (l: its logit); 0 = off.
    r1_weight: NonNegative = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adversarial_loss == "hinge" and (self.generator_loss != "non-saturating" or self.label_smoothing):
            raise ConfigError("adversarial_loss=hinge takes neither generator_loss nor label_smoothing (logistic only)")

    @property
    def generator_objective(self) -> Literal["non-saturating", "minimax", "hinge"]:
        """The generator's loss, as :func:`generator_loss` names it."""
        return "hinge" if self.adversarial_loss == "hinge" else self.generator_loss


def adam_pair(config: AdversarialTraining, generator_params, discriminator_params) -> dict[str, torch.optim.Optimizer]:
    betas = (config.beta1, 0.999)
    return {
        "generator": adam(generator_params, lr=config.learning_rate * config.generator_rate_ratio, betas=betas),
        "discriminator": adam(discriminator_params, lr=config.learning_rate, betas=betas),
    }


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, *, label_smoothing: float,
                       kind: Literal["logistic", "hinge"] = "logistic") -> torch.Tensor:
    """Logistic: -[log D(x) + log(1 - D(G(z)))], with one-sided smoothing of the real targets.
    Hinge: relu(1 - l(x)) + relu(1 + l(G(z))) on the logits l, each averaged over its batch."""
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    real_targets = torch.full_like(real_logits, 1.0 - label_smoothing)
    return (F.binary_cross_entropy_with_logits(real_logits, real_targets)
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E ||grad_x l(x)||^2 over the batch, differentiable (for the discriminator's step); ``real``
    must require gradients and be what ``real_logits`` were computed from."""
    (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return gradient.pow(2).flatten(1).sum(1).mean()


def generator_loss(fake_logits: torch.Tensor, kind: Literal["non-saturating", "minimax", "hinge"]) -> torch.Tensor:
    """Non-saturating: -log D(G(z)) (strong gradients early, Goodfellow et al. 2014, sec. 3).
    Minimax: log(1 - D(G(z))), the value function's own term, which saturates when D wins.
    Hinge: -l(G(z)), the logit itself (the hinge game's generator)."""
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


Discriminate = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # (images, labels) -> logits (B,)


def _chunk(tensor: torch.Tensor | None, k: int):
    return [None] * k if tensor is None else list(tensor.chunk(k))


@contextlib.contextmanager
def frozen(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Within the block, the parameters ``optimizer`` updates do not require gradients."""
    parameters = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


class MinibatchStd(nn.Module):
    """Appends one feature to every image's features: the standard deviation of each feature over
    a group of ``group_size`` consecutive images of the batch, averaged over the features (Karras
    et al. 2018, sec. 3, "minibatch standard deviation"). A generator that puts many samples on
    the same few modes gives groups of near-copies, whose statistic is near 0, so the
    discriminator can tell them from real groups and the generator is pushed to vary its samples.

    Input (B, F) or (B, C, H, W); output (B, F + 1) or (B, C + 1, H, W). A batch whose size is
    not a multiple of ``group_size`` uses the largest group size dividing it. Groups are
    consecutive rows, so batches of real and fake images must be discriminated apart (see
    ``mixes_batch``)."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = max(d for d in range(1, min(self.group_size, b) + 1) if b % d == 0)
        grouped = x.reshape(b // g, g, *x.shape[1:])  # (B/g, g, ...)
        # The variance written out: torch.var over this middle dimension took 34 ms a call on CPU for
        # the DCGAN's (32, 4, 128, 7, 7), most of a training step; the two means take under 1 ms.
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        std = (centred.pow(2).mean(dim=1) + 1e-8).sqrt()  # (B/g, ...)
        statistic = std.flatten(1).mean(1).repeat_interleave(g)  # (B,)
        if x.dim() == 2:
            return torch.cat([x, statistic[:, None]], dim=1)
        return torch.cat([x, statistic.view(b, 1, 1, 1).expand(b, 1, *x.shape[2:])], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class ParameterAverage(nn.Module):
    """A running average of a network, kept beside it and never trained: after every update of the
    network, theta_avg <- beta_n theta_avg + (1 - beta_n) theta, with beta_n = min(beta, (1 + n) /
    (10 + n)) at the n-th update, so that the first updates are not diluted by the initial weights.
    Buffers (batch-norm running statistics) are averaged alike. For a generator this is the
    exponential moving average of Yazici et al. (2019) (used by Karras et al. 2018 and Brock et
    al. 2019): the sampler is the average of the weights the game oscillates around, not the last
    step's. ``network`` is the averaged copy, to be called where the trained one would be."""

    def __init__(self, network: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.network = copy.deepcopy(network).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        n = int(self.updates)
        beta = min(self.decay, (1 + n) / (10 + n))
        averaged = [*self.network.parameters(), *self.network.buffers()]
        current = [*network.parameters(), *network.buffers()]
        for a, c in zip(averaged, current, strict=True):
            if a.is_floating_point():
                a.lerp_(c, 1 - beta)
            else:
                a.copy_(c)  # counters (batch norm's num_batches_tracked)
        self.updates += 1

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


def average_of(network: nn.Module, decay: float) -> ParameterAverage | None:
    """The running average of ``network`` with ``decay`` (0 = none)."""
    return ParameterAverage(network, decay) if decay else None


class AveragedGenerator(GenerativeModel):
    """A model that may keep a running average of its generator networks (``generator_average``)
    and sample from it. The average is what sampling and evaluation use, so a shipped model leaves
    the trained generators out (their weights are restored from the average on loading)."""

    def __init__(self, config: AdversarialTraining, spec: DataSpec):
        super().__init__(config, spec)
        # The running average that samples and held-out losses use; subclasses set it, once their
        # generators exist, with ``average_of(self.trained_generators(), config.generator_average)``.
        self.generator_average: ParameterAverage | None = None

    @abc.abstractmethod
    def trained_generators(self) -> nn.Module:
        """The trained generator networks, in the structure ``generator_average.network`` copies."""

    def generators(self, training: bool) -> nn.Module:
        """The trained generators in training steps; otherwise their running average, if kept."""
        return self.trained_generators() if training or self.generator_average is None else self.generator_average.network

    def update_generator_average(self) -> None:
        """After a generator step: fold the trained generators into their running average, if kept."""
        if self.generator_average is not None:
            self.generator_average.update(self.trained_generators())

    def _averaged_keys(self) -> dict[str, str]:
        """State-dict key of each trained generator tensor -> the key of its average."""
        if self.generator_average is None:
            return {}
        keys = {id(tensor): key for key, tensor in self.state_dict(keep_vars=True).items()}
        return {keys[id(tensor)]: f"generator_average.network.{key}"
                for key, tensor in self.trained_generators().state_dict(keep_vars=True).items()}

    def shipped_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        trained = self._averaged_keys()
        return {key: tensor for key, tensor in state.items() if key not in trained}

    def complete_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        filled = {key: state[average] for key, average in self._averaged_keys().items()
                  if key not in state and average in state}
        return {**state, **filled}


def mixes_batch(module: nn.Module) -> bool:
    """Whether an image's output depends on the other images of its batch (batch norm in training,
    minibatch statistics): such a discriminator must see real and fake batches separately."""
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, MinibatchStd)) for m in module.modules())


def adversarial_iteration(
    config: AdversarialTraining,
    discriminate: Discriminate,
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor | None = None,
    extra_generator_loss: torch.Tensor | None = None,
    adversarial_weight: float = 1.0,
    joint_batch: bool = False,
    r1_columns: slice | None = None,
) -> Metrics:
    """k discriminator steps on ``real`` vs ``fake.detach()`` (split into k chunks), then one
    generator step on ``adversarial_weight * generator_loss + extra_generator_loss``.

    ``fake`` must still carry the generator's graph. With ``joint_batch`` the discriminator sees
    real and fake images as one batch (one pass of twice the rows: 25 ms instead of 32 for the
    MLP GAN's discriminator); only for discriminators whose outputs do not depend on the rest of
    the batch (``mixes_batch``). ``r1_columns`` picks the columns of (B, n) logits whose gradients
    the R1 term penalises (None: all of them). Returns detached scalars: both losses (the
    discriminator's with its R1 term, if ``r1_weight``: what it minimises), D(x) and D(G(z))
    (mean probabilities at the discriminator steps; with the hinge loss the sigmoid of its logits, a
    monotone stand-in), and ``loss`` (their sum, watched for divergence).
    """
    k = config.discriminator_steps
    d_optimizer, g_optimizer = optimizers["discriminator"], optimizers["generator"]
    d_losses, d_real, d_fake = [], [], []
    for real_chunk, fake_chunk, label_chunk in zip(real.chunk(k), fake.detach().chunk(k), _chunk(labels, k), strict=True):
        if config.r1_weight:
            real_chunk = real_chunk.detach().requires_grad_(True)
        if joint_batch:
            both_labels = None if label_chunk is None else torch.cat([label_chunk, label_chunk])
            real_logits, fake_logits = discriminate(torch.cat([real_chunk, fake_chunk]), both_labels).split(
                [len(real_chunk), len(fake_chunk)])
        else:
            real_logits = discriminate(real_chunk, label_chunk)
            fake_logits = discriminate(fake_chunk, label_chunk)
        loss = discriminator_loss(real_logits, fake_logits, label_smoothing=config.label_smoothing,
                                  kind=config.adversarial_loss)
        if config.r1_weight:
            penalised = real_logits if r1_columns is None else real_logits[:, r1_columns]
            loss = loss + 0.5 * config.r1_weight * r1_penalty(penalised, real_chunk)
        d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        d_optimizer.step()
        d_losses.append(loss.detach())
        d_real.append(torch.sigmoid(real_logits).mean().detach())
        d_fake.append(torch.sigmoid(fake_logits).mean().detach())
    # The generator step needs dL/dG(z) through D, not D's own weight gradients: freezing D's
    # parameters skips their computation (a third of the MLP GAN's backward work) and leaves the
    # discriminator's .grad as its own step left it.
    with frozen(d_optimizer):
        adversarial = generator_loss(discriminate(fake, labels), config.generator_objective)
        g_loss = adversarial_weight * adversarial
        if extra_generator_loss is not None:
            g_loss = g_loss + extra_generator_loss
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
    g_optimizer.step()
    d_mean = torch.stack(d_losses).mean()
    return {
        "loss": d_mean + g_loss.detach(),
        "discriminator_loss": d_mean,
        "generator_loss": adversarial.detach(),
        "d_real": torch.stack(d_real).mean(),
        "d_fake": torch.stack(d_fake).mean(),
    }


@contextlib.contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Within the block, the batch-norm layers in ``module`` normalise by each batch's own statistics,
    as in training, and leave their running statistics as they were."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
             for m in norms]
    for m in norms:
        m.train()
        m.momentum = 0.0  # running <- (1 - 0) running + 0 batch
    try:
        yield
    finally:
        for m, (training, momentum, tracked) in zip(norms, saved, strict=True):
            m.train(training)
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@torch.no_grad()
def adversarial_evaluation(
    config: AdversarialTraining, discriminate: Discriminate, discriminator: nn.Module, *, real: torch.Tensor,
    fake: torch.Tensor, labels: torch.Tensor | None = None, extra_generator_loss: torch.Tensor | None = None,
    adversarial_weight: float = 1.0,
) -> Metrics:
    """The same losses on held-out real images and fresh samples, without updates; ``loss`` is what
    ``adversarial_iteration`` reports in training, the discriminator's loss plus
    ``adversarial_weight * generator_loss + extra_generator_loss``. The discriminator
    (``discriminator``, the networks ``discriminate`` calls) sees them as in training: real and fake
    batches apart, batch norm by each batch's statistics. Its running statistics, which mix real and
    fake batches, gave held-out D(x) swinging between 0.97 and 0.02 from epoch to epoch (a DCGAN at
    a constant rate) while its training-time D(x) stayed at 0.75-0.79."""
    with batch_statistics(discriminator):
        real_logits, fake_logits = discriminate(real, labels), discriminate(fake, labels)
    d_loss = discriminator_loss(real_logits, fake_logits, label_smoothing=0.0, kind=config.adversarial_loss)
    g_loss = generator_loss(fake_logits, config.generator_objective)
    minimised = adversarial_weight * g_loss + (0 if extra_generator_loss is None else extra_generator_loss)
    return {
        "loss": d_loss + minimised,
        "discriminator_loss": d_loss,
        "generator_loss": g_loss,
        "d_real": torch.sigmoid(real_logits).mean(),
        "d_fake": torch.sigmoid(fake_logits).mean(),
    }


class LatentGAN(AveragedGenerator, Sampler):
    """Abstract: a GAN whose generator maps z ~ N(0, I) (and, if conditional, a label) to an
    image in [-1, 1]. Subclasses build ``self.generator`` and ``self.discriminator`` networks and
    say how to call them; the game, sampling and previews are the same for all."""

    few_classes_hint = ' (mode collapse? the generator may have settled on a few modes)'

    @property
    def data_format(self) -> DataFormat:
        return DataFormat(value_range="symmetric")

    def trained_generators(self) -> nn.Module:
        return self.generator

    @abc.abstractmethod
    def generate(self, latents: torch.Tensor, labels: torch.Tensor | None = None, *, training: bool = False) -> torch.Tensor:
        """z (B, latent_dim) -> images (B, C, H, W) in [-1, 1], by ``generators(training)``."""

    @abc.abstractmethod
    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> discriminator logits (B,)."""

    def latents(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        device = next(self.parameters()).device
        return torch.randn(num, self.config.latent_dim, generator=generator, device=device)

    def _labels(self, batch: Batch) -> torch.Tensor | None:
        return batch.labels if self.conditional else None

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Everything the discriminator's optimizer updates."""
        return list(self.discriminator.parameters())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return adam_pair(self.config, self.generator.parameters(), self.discriminator_parameters())

    def train_step(self, batch: Batch, optimizers, *, generator: torch.Generator) -> Metrics:
        labels = self._labels(batch)
        fake = self.generate(self.latents(len(batch), generator), labels, training=True)
        metrics = adversarial_iteration(self.config, self.discriminate, optimizers, real=batch.images, fake=fake,
                                        labels=labels, joint_batch=not mixes_batch(self.discriminator))
        self.update_generator_average()
        return metrics

    def evaluate_step(self, batch: Batch, *, generator: torch.Generator) -> Metrics:
        labels = self._labels(batch)
        fake = self.generate(self.latents(len(batch), generator), labels)
        return adversarial_evaluation(self.config, self.discriminate, self.discriminator, real=batch.images, fake=fake,
                                      labels=labels)

    @torch.no_grad()
    def sample(self, num: int, *, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        return to_unit_range(self.generate(self.latents(num, generator), labels), self.data_format)

    def preview(self, batch: Batch, *, generator: torch.Generator) -> torch.Tensor:
        return self.sample(len(batch), labels=self._labels(batch), generator=generator)
