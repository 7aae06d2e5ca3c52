"""Deep convolutional GAN, with the two generators the lectures show.

``radford`` follows Radford, Metz & Chintala (2016): transposed convolutions, batch norm in both
networks (not on the generator's output nor the discriminator's input), ReLU in the generator with
a tanh output, LeakyReLU(0.2) in the discriminator, no pooling.

``upsampling`` is the Keras-style model: the generator upsamples by repetition (UpSampling2D) and
convolves (4x4, 128 filters, batch norm, LeakyReLU), the discriminator is two strided 3x3
convolutions with LeakyReLU and dropout(0.4) (Brownlee's). It costs about 1.6 GFLOP per image per
training iteration (``genzoo benchmark speed``), ten times the ``radford`` default.
``discriminator_architecture`` pairs either generator with the other's discriminator.

Image sides must be multiples of 4 (28 -> 7 -> 14 -> 28), and of 2^layers for a radford network.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import Between, Channels, Fraction, NonNegativeCount, Size
from ..data import DataSpec
from .adversarial import AdversarialTraining, LatentGAN, MinibatchStd, average_of
from .layers import Dropout, leaky_relu


@dataclass(frozen=True)
class DCGANConfig(AdversarialTraining):
    architecture: Literal["radford", "upsampling"] = "radford"
    # The discriminator: "same" = the one `architecture` names; "radford" or "upsampling" = that
    # one, whichever the generator. In a mixed pair the radford options below (layers, extra_convs,
    # the norms, minibatch_std_group) reach the radford network only, and dropout the upsampling
    # discriminator only. The lectures' discriminator sees 7x7 pixels per feature (two strided 3x3
    # convolutions): with it the upsampling generator drew strokes, not digits (classifier score
    # 6.2 after 4 epochs at a rate of 1e-3 with R1); with Radford et al.'s, 8.6 after 4.
    discriminator_architecture: Literal["same", "radford", "upsampling"] = "same"
    # radford: strided (transposed) convolutions in each network; image sides must be divisible by
    # 2^layers (2 for 28x28 MNIST: 7 -> 14 -> 28; 4 for 64x64: the paper's 4 -> 8 -> 16 -> 32 -> 64;
    # 1 for a 14x14 image: 7 -> 14)
    layers: typing.Annotated[int, Between(1, 6)] = 2
    latent_dim: Size = 100
    generator_channels: Channels = 64  # radford: feature maps 2C at H/4, C at H/2; upsampling: C throughout
    discriminator_channels: Channels = 64  # radford: C at H/2, 2C at H/4; upsampling: C, C
    dropout: Fraction = 0.4  # upsampling discriminator only (Brownlee)
    # radford discriminator: > 0 appends the feature spread over groups of this many images to the
    # last feature map (minibatch standard deviation, Karras et al. 2018), against mode collapse; 0 = off.
    minibatch_std_group: NonNegativeCount = 0
    # radford discriminator: how it keeps its layers in check. "batch": batch norm (Radford et al.
    # 2016); "spectral": no batch norm, every weight divided by its largest singular value (Miyato
    # et al. 2018), so the discriminator is 1-Lipschitz per layer and sees each image on its own.
    discriminator_norm: Literal["batch", "spectral"] = "batch"
    # radford generator: how it keeps its feature maps in scale. "batch": batch norm (Radford et
    # al. 2016), so during training each sample depends on the rest of its batch, and sampling uses
    # running statistics instead; "pixel": each pixel's feature vector scaled to unit root mean
    # square (Karras et al. 2018, sec. 4.2), per image, the same in training and sampling.
    generator_norm: Literal["batch", "pixel"] = "batch"
    # radford networks: this many 3x3 stride-1 convolutions (with the same normalisation and
    # activation) at every resolution below the image's: in the generator after its linear map and
    # after each upsampling step but the last, in the discriminator after each downsampling step;
    # 0 = Radford et al.'s networks.
    extra_convs: typing.Annotated[int, Between(0, 4)] = 0
    # > 0: samples come from a running average of the generator's weights with this decay
    # (Yazici et al. 2019; e.g. 0.999, about the last 1000 steps), not from the last step's; 0 = off.
    generator_average: Fraction = 0.0


PRESETS = {
    "radford": DCGANConfig(),
    # The generator learns at a quarter of the discriminator's rate: at the same rate its last
    # layer (a 7x7 convolution over 128 channels, fan-in 6272) moved the mean output pixel by up to
    # 0.2 per Adam step, it matched whatever the discriminator had just learned, and D(x) and
    # D(G(z)) stayed at 0.50 for a whole epoch while the samples stayed strokes.
    # Radford et al.'s 64x64 networks (their LSUN / faces DCGAN): 1024 channels at 4x4 in the paper;
    # here 512 (generator_channels 64 x 2^3), as in their released code. Use with a 64x64 folder:
    # --set data.image_size=64 --set data.channels=3.
    "radford-64": DCGANConfig(layers=4),
    "upsampling": DCGANConfig(architecture="upsampling", generator_channels=128, discriminator_channels=64,
                              generator_rate_ratio=0.25),
}


class PixelNorm(nn.Module):
    """x / sqrt(mean_c x_c^2 + eps) at every pixel: each pixel's feature vector (over the channels
    of a (B, C, H, W) map) scaled to unit root mean square (Karras et al. 2018, eq. in sec. 4.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def radford_generator(config: DCGANConfig, spec: DataSpec) -> nn.Sequential:
    """z -> (g * 2^(L-1), H / 2^L, W / 2^L) by a linear map, then L transposed 4x4 stride-2
    convolutions halving the channels (batch or pixel norm and ReLU between, tanh at the end);
    ``extra_convs`` 3x3 convolutions of the same width after the linear map and after each
    transposed convolution but the last."""
    g, layers = config.generator_channels, config.layers
    h, w = spec.height >> layers, spec.width >> layers
    widths = [g * 2 ** (layers - 1 - i) for i in range(layers)]  # e.g. 2g, g for two layers
    batch = config.generator_norm == "batch"

    def norm(channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels, momentum=0.1) if batch else PixelNorm()

    modules: list[nn.Module] = [
        nn.Linear(config.latent_dim, widths[0] * h * w, bias=not batch),
        nn.Unflatten(1, (widths[0], h, w)),  # (B, c*h*w) -> (B, c, h, w)
        norm(widths[0]),
        nn.ReLU(),
    ]
    def extra(channels: int) -> list[nn.Module]:
        return [module for _ in range(config.extra_convs)
                for module in (nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=not batch),
                               norm(channels), nn.ReLU())]

    modules += extra(widths[0])
    for c_in, c_out in zip(widths, widths[1:], strict=False):
        modules += [nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=not batch),
                    norm(c_out), nn.ReLU(), *extra(c_out)]
    modules += [nn.ConvTranspose2d(widths[-1], spec.channels, kernel_size=4, stride=2, padding=1), nn.Tanh()]
    return nn.Sequential(*modules)


def radford_discriminator(spec: DataSpec, width: int, *, layers: int = 2, minibatch_std_group: int = 0,
                          norm: Literal["batch", "spectral"] = "batch", extra_convs: int = 0) -> nn.Sequential:
    """``layers`` 4x4 stride-2 convolutions doubling the width (width, 2 x width, ...), LeakyReLU(0.2),
    batch norm on all but the first, each followed by ``extra_convs`` 3x3 stride-1 convolutions of
    its width, then (with ``minibatch_std_group``) a minibatch-std channel, then a linear logit
    (Radford et al. 2016). Image sides must be multiples of 2^layers.

    ``norm="spectral"``: no batch norm; every convolution and the logit layer computes with W / sigma(W),
    sigma(W) its largest singular value, estimated by one power iteration per training pass
    (Miyato et al. 2018, Algorithm 1; ``torch.nn.utils.parametrizations.spectral_norm``)."""
    spectral = norm == "spectral"

    def normed(layer: nn.Module) -> nn.Module:
        if not spectral:
            return layer
        init_weights(layer)  # before the power iteration's start, which spectral_norm runs on the weight it finds
        return nn.utils.parametrizations.spectral_norm(layer)

    def block(c_in: int, c_out: int, kernel: int, stride: int, batch_norm: bool = True) -> list[nn.Module]:
        """Convolution (halving the sides at stride 2, keeping them at stride 1), its norm, LeakyReLU."""
        if spectral or not batch_norm:
            return [normed(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2 if stride == 1 else 1)),
                    leaky_relu()]
        return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2 if stride == 1 else 1, bias=False),
                nn.BatchNorm2d(c_out, momentum=0.1), leaky_relu()]

    def extra(channels: int) -> list[nn.Module]:
        return [module for _ in range(extra_convs) for module in block(channels, channels, 3, 1)]

    modules: list[nn.Module] = [*block(spec.channels, width, 4, 2, batch_norm=False), *extra(width)]
    for i in range(1, layers):
        c_in, c_out = width * 2 ** (i - 1), width * 2**i
        modules += [*block(c_in, c_out, 4, 2), *extra(c_out)]
    side = (spec.height >> layers) * (spec.width >> layers)
    channels = width * 2 ** (layers - 1)
    if minibatch_std_group:
        modules.append(MinibatchStd(minibatch_std_group))
        channels += 1
    return nn.Sequential(*modules, nn.Flatten(), normed(nn.Linear(channels * side, 1)))


def same_conv4(c_in: int, c_out: int) -> list[nn.Module]:
    """A 4x4 convolution keeping height and width, padded as Keras' 'same' (1 before, 2 after)."""
    return [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, kernel_size=4)]


def upsampling_generator(config: DCGANConfig, spec: DataSpec) -> nn.Sequential:
    """z -> (g, H / 4, W / 4) by a linear map, then twice: nearest 2x upsampling, a 4x4 'same'
    convolution, batch norm, LeakyReLU; a 7x7 convolution to the image and tanh (the lectures')."""
    g, h, w = config.generator_channels, spec.height // 4, spec.width // 4
    return nn.Sequential(
        nn.Linear(config.latent_dim, g * h * w),
        leaky_relu(),
        nn.Unflatten(1, (g, h, w)),  # (B, g*h*w) -> (B, g, h, w)
        nn.Upsample(scale_factor=2, mode="nearest"),
        *same_conv4(g, g),
        nn.BatchNorm2d(g, momentum=0.1),
        leaky_relu(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *same_conv4(g, g),
        nn.BatchNorm2d(g, momentum=0.1),
        leaky_relu(),
        nn.Conv2d(g, spec.channels, kernel_size=7, padding=3),
        nn.Tanh(),
    )


def upsampling_discriminator(config: DCGANConfig, spec: DataSpec) -> nn.Sequential:
    """Two 3x3 stride-2 convolutions, each with LeakyReLU and dropout, then a linear logit (the lectures')."""
    d, h, w = config.discriminator_channels, spec.height // 4, spec.width // 4
    return nn.Sequential(
        nn.Conv2d(spec.channels, d, kernel_size=3, stride=2, padding=1),
        leaky_relu(),
        Dropout(config.dropout),
        nn.Conv2d(d, d, kernel_size=3, stride=2, padding=1),
        leaky_relu(),
        Dropout(config.dropout),
        nn.Flatten(),
        nn.Linear(d * h * w, 1),
    )


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and unit-mean batch-norm scales (Radford et al. 2016, sec. 4). Spectrally
    normalised layers are left alone: they were initialised before their normalisation was attached."""
    if parametrize.is_parametrized(module):
        return
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGAN(LatentGAN):
    def __init__(self, config: DCGANConfig, spec: DataSpec):
        super().__init__(config, spec)
        generator_kind = config.architecture
        discriminator_kind = (config.architecture if config.discriminator_architecture == "same"
                              else config.discriminator_architecture)
        multiple = max(4, 2**config.layers) if "radford" in (generator_kind, discriminator_kind) else 4
        if spec.height % multiple or spec.width % multiple:
            raise ValueError(f"dcgan needs image sides that are multiples of {multiple}, not {spec.height}x{spec.width}")
        if generator_kind != "radford" and config.generator_norm != "batch":
            raise ValueError("generator_norm applies to the radford generator only")
        if discriminator_kind != "radford" and (config.minibatch_std_group or config.discriminator_norm != "batch"):
            raise ValueError("minibatch_std_group and discriminator_norm apply to the radford discriminator only")
        if "radford" not in (generator_kind, discriminator_kind) and config.extra_convs:
            raise ValueError("extra_convs applies to the radford networks only")
        # Both networks are built before either is initialised, so that a seed gives the weights it
        # gave when one function built both.
        self.generator = (radford_generator if generator_kind == "radford" else upsampling_generator)(config, spec)
        if discriminator_kind == "radford":
            self.discriminator = radford_discriminator(
                spec, config.discriminator_channels, layers=config.layers, minibatch_std_group=config.minibatch_std_group,
                norm=config.discriminator_norm, extra_convs=config.extra_convs)
        else:
            self.discriminator = upsampling_discriminator(config, spec)
        if generator_kind == "radford":
            self.generator.apply(init_weights)
        else:
            # PyTorch's default (Kaiming-uniform) initialisation, close to Keras' Glorot, except a
            # small output layer so that tanh starts unsaturated. Without the generator's batch
            # norm this network collapsed on MNIST whatever the init: the output went to -1
            # everywhere (pre-tanh mean -20 after 120 steps) and D won.
            init_weights(self.generator[-2])
        if discriminator_kind == "radford":
            self.discriminator.apply(init_weights)
        self.generator_average = average_of(self.trained_generators(), config.generator_average)

    def generate(self, latents: torch.Tensor, labels: torch.Tensor | None = None, *, training: bool = False) -> torch.Tensor:
        return self.generators(training)(latents)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.discriminator(images).squeeze(1)
