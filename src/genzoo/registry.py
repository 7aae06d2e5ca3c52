"""The registry: every model genzoo knows, by name. The CLI, the tests and the docs read it.

Adding a model is one file under ``models/``, one entry here, and one tiny config in
``tests/tiny_configs.py``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .data import DataSpec
from .errors import ConfigError
from .models import autoencoder, context_encoder, dbm, dbn, dcgan, draw, gan, lapgan, rbm, vae
from .models.base import GenerativeModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    model_class: type[GenerativeModel]
    config: Any  # the default config (a frozen dataclass instance)
    summary: str  # one line for `genzoo models`
    reference: str  # the paper or lecture it follows
    presets: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # --preset NAME
    batch_size: int = 128  # default training batch size

    def build(self, config: Any, spec: DataSpec) -> GenerativeModel:
        try:
            return self.model_class(config, spec)
        except ValueError as exc:  # a config that cannot work with this data
            raise ConfigError(f"{self.name}: {exc}") from None

    def preset(self, name: str) -> Any:
        if name not in self.presets:
            choices = ", ".join(self.presets) or "none"
            raise ConfigError(f"model {self.name!r} has no preset {name!r}; presets: {choices}")
        return self.presets[name]


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "ae",
            autoencoder.Autoencoder,
            autoencoder.PRESETS["dense"],
            "autoencoder, dense or convolutional; reconstruction and 2-D dimension reduction",
            "Hinton & Salakhutdinov 2006, Science 313",
            autoencoder.PRESETS,
        ),
        ModelEntry(
            "dae",
            autoencoder.Autoencoder,
            autoencoder.DENOISING_PRESETS["salt"],
            "denoising autoencoder: salt or gaussian noise in, clean image out",
            "Vincent et al. 2008, ICML",
            autoencoder.DENOISING_PRESETS,
        ),
        ModelEntry(
            "vae",
            vae.VAE,
            vae.PRESETS["keras-strided"],
            "variational autoencoder, conv or MLP, 2-D latent by default",
            "Kingma & Welling 2014, ICLR",
            vae.PRESETS,
        ),
        ModelEntry(
            "cvae",
            vae.VAE,
            dataclasses.replace(vae.PRESETS["keras-strided"], conditional=True),
            "conditional VAE: the label conditions encoder and decoder",
            "Sohn, Lee & Yan 2015, NeurIPS",
            {name: dataclasses.replace(cfg, conditional=True) for name, cfg in vae.PRESETS.items()},
        ),
        ModelEntry(
            "gan",
            gan.GAN,
            gan.GANConfig(),
            "GAN with MLPs (G 256-512-1024, D 1024-512-256), the lectures' architecture",
            "Goodfellow et al. 2014, NeurIPS",
        ),
        ModelEntry(
            "cgan",
            gan.GAN,
            gan.GANConfig(conditional=True),
            "conditional GAN: the label conditions generator and discriminator",
            "Mirza & Osindero 2014, arXiv:1411.1784",
        ),
        ModelEntry(
            "dcgan",
            dcgan.DCGAN,
            dcgan.PRESETS["radford"],
            "deep convolutional GAN: Radford et al. guidelines, or the upsampling (Keras) generator",
            "Radford, Metz & Chintala 2016, ICLR",
            dcgan.PRESETS,
        ),
        ModelEntry(
            "context-encoder",
            context_encoder.ContextEncoder,
            context_encoder.ContextEncoderConfig(),
            "inpainting: an encoder-decoder fills a masked square, L2 + adversarial loss",
            "Pathak et al. 2016, CVPR",
        ),
        ModelEntry(
            "lapgan",
            lapgan.LAPGAN,
            lapgan.LAPGANConfig(),
            "Laplacian pyramid of GANs: a coarse GAN, then residual GANs coarse to fine",
            "Denton, Chintala, Szlam & Fergus 2015, NeurIPS",
        ),
        ModelEntry(
            "rbm",
            rbm.RBM,
            rbm.RBMConfig(),
            "restricted Boltzmann machine, CD-k or PCD, Gibbs sampling, AIS likelihood",
            "Hinton 2002; Salakhutdinov & Murray 2008, ICML",
            batch_size=100,
        ),
        ModelEntry(
            "dbn",
            dbn.DBN,
            dbn.DBNConfig(),
            "deep belief net: RBMs stacked greedily; Gibbs at the top, then a down pass",
            "Hinton, Osindero & Teh 2006, Neural Computation",
            {"2-layer": dbn.DBNConfig(), "3-layer": dbn.DBNConfig(hidden_layers=(500, 500, 2000))},
            batch_size=100,
        ),
        ModelEntry(
            "dbm",
            dbm.DBM,
            dbm.DBMConfig(),
            "deep Boltzmann machine, 2 hidden layers: pretraining, mean-field + persistent chains, bridged log Z",
            "Salakhutdinov & Hinton 2009, AISTATS",
            batch_size=100,
        ),
        ModelEntry(
            "draw",
            draw.DRAW,
            draw.DRAWConfig(),
            "DRAW: recurrent VAE writing a canvas over T steps, with Gaussian read/write attention",
            "Gregor et al. 2015, ICML",
            {"attention": draw.DRAWConfig(), "no-attention": draw.DRAWConfig(attention=False)},
        ),
    )
}


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a :class:`ConfigError` with suggestions otherwise."""
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(name, MODELS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown model {name!r}{hint}; known models: {', '.join(MODELS)}")
