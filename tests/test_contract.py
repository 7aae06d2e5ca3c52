"""The model contract, checked for every model in the registry."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import genzoo
from genzoo.config import apply_overrides
from genzoo.data import BatchLoader, load_dataset
from genzoo.models.base import Denoiser, GenerativeModel, Inpainter, LatentCodec, Sampler
from genzoo.registry import MODELS
from genzoo.runs import build_model

from .tiny_configs import TINY, tiny_overrides

ALL_MODELS = sorted(MODELS)


def tiny_config(name: str, **train):
    config = apply_overrides(genzoo.default_config(name), tiny_overrides(name))
    config = dataclasses.replace(config, data=genzoo.DataConfig(dataset="fake"))
    return dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=32, **train))


def test_every_model_has_a_tiny_config():
    assert sorted(TINY) == ALL_MODELS


@pytest.fixture(scope="module")
def fake_train():
    return load_dataset("fake", "train")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_train_step_changes_parameters_and_returns_finite_loss(name, fake_train):
    config = tiny_config(name)
    model = build_model(config, fake_train.spec)
    assert isinstance(model, GenerativeModel)
    optimizers = model.configure_optimizers()
    before = [p.detach().clone() for p in model.parameters()]
    loader = BatchLoader(fake_train, batch_size=32, fmt=model.data_format, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for batch in loader.batches(None, generator, limit=3):
        metrics = model.train_step(batch, optimizers, generator=generator)
        assert all(value.dim() == 0 and not value.requires_grad for value in metrics.values())
        losses.append(float(metrics["loss"]))
    assert all(torch.isfinite(torch.tensor(losses)))
    changed = [not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=False)]
    assert all(changed), f"{sum(not c for c in changed)} parameter tensors did not change"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_capabilities_have_the_right_shapes(name, fake_train):
    model = build_model(tiny_config(name), fake_train.spec).eval()
    spec = fake_train.spec
    labels = torch.arange(6) % spec.num_classes
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        if isinstance(model, Sampler):
            images = model.sample(6, labels=labels if model.conditional else None, generator=generator)
            assert images.shape == (6, *spec.shape)
            assert images.min() >= 0 and images.max() <= 1
        if isinstance(model, LatentCodec):
            x = fake_train.images[:6].float() / 255
            codes = model.encode(x, labels if model.conditional else None)
            assert codes.shape == (6, model.latent_dim)
            assert model.decode(codes, labels if model.conditional else None).shape == (6, *spec.shape)
        if isinstance(model, Denoiser) and model.corruption != "none":
            x = fake_train.images[:6].float() / 255
            assert not torch.equal(model.corrupt(x, generator), x)


@pytest.mark.parametrize("name", [n for n in ALL_MODELS if issubclass(MODELS[n].model_class, Sampler)])
def test_samples_change_with_the_seed_and_repeat_with_it(name, fake_train):
    model = build_model(tiny_config(name), fake_train.spec).eval()
    labels = torch.zeros(4, dtype=torch.int64) if model.conditional else None

    def draw(seed):
        return model.sample(4, labels=labels, generator=torch.Generator().manual_seed(seed))

    with torch.no_grad():
        assert torch.equal(draw(1), draw(1))
        assert not torch.equal(draw(1), draw(2))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_saved_and_reloaded_model_gives_identical_outputs(name, tmp_path):
    config = tiny_config(name, epochs=1, max_batches=2, eval_batches=1)
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    trained = trainer.model.cpu().eval()
    loaded = genzoo.load(tmp_path / "run")
    assert type(loaded) is type(trained)
    x = load_dataset("fake", "test").images[:5].float() / 255
    labels = torch.arange(5) % 4
    with torch.no_grad():
        for a, b in zip(trained.state_dict().values(), loaded.state_dict().values(), strict=False):
            assert torch.equal(a, b)
        if isinstance(trained, Sampler):
            kwargs = {"labels": labels} if trained.conditional else {}
            first = trained.sample(5, generator=torch.Generator().manual_seed(3), **kwargs)
            second = loaded.sample(5, generator=torch.Generator().manual_seed(3), **kwargs)
            assert torch.equal(first, second)
        if isinstance(trained, LatentCodec):
            kwargs = {"labels": labels} if trained.conditional else {}
            assert torch.equal(trained.reconstruct(x, **kwargs), loaded.reconstruct(x, **kwargs))


def test_conditional_models_reject_missing_or_bad_labels(fake_train):
    model = build_model(tiny_config("cvae"), fake_train.spec)
    with pytest.raises(ValueError, match="labels are required"):
        model.sample(3)
    with pytest.raises(ValueError, match="labels must lie in"):
        model.sample(2, labels=torch.tensor([0, 9]))


@pytest.mark.parametrize(("name", "preset", "small"), [
    ("dcgan", "radford-64", ["generator_channels=4", "discriminator_channels=4"]),
    ("vae", "conv-64", ["conv_channels=4,4,8,8", "hidden_dims=8"]),
])
def test_64_pixel_rgb_presets_train_on_64_pixel_colour_images(name, preset, small):
    config = apply_overrides(genzoo.default_config(name, preset=preset), small)
    data = load_dataset("fake", "train", image_size=64, channels=3)
    model = build_model(config, data.spec)
    optimizers = model.configure_optimizers()
    loader = BatchLoader(data, batch_size=8, fmt=model.data_format, drop_last=True)
    generator = torch.Generator().manual_seed(0)
    before = [p.detach().clone() for p in model.parameters()]
    for batch in loader.batches(None, generator, limit=2):
        assert torch.isfinite(model.train_step(batch, optimizers, generator=generator)["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert model.sample(3, generator=generator).shape == (3, 3, 64, 64)


def test_radford_64_refuses_28_pixel_images():
    config = genzoo.default_config("dcgan", preset="radford-64")
    with pytest.raises(genzoo.GenzooError, match="multiples of 16"):
        genzoo.get_entry("dcgan").build(config.model_config, load_dataset("fake", "train").spec)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_inference_returns_plain_tensors(name, fake_train):
    """Samples, codes, decodings and inpaintings carry no autograd graph (the README's
    `model.sample(...).numpy()` works)."""
    model = build_model(tiny_config(name), fake_train.spec).eval()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, *fake_train.spec.shape)
    outputs = []
    if isinstance(model, Sampler):
        outputs.append(model.sample(4, labels=torch.arange(4) if model.conditional else None, generator=generator))
    if isinstance(model, LatentCodec):
        labels = torch.arange(4) if model.conditional else None
        outputs += [model.encode(images, labels), model.decode(torch.zeros(4, model.latent_dim), labels),
                    model.reconstruct(images, labels)]
    if isinstance(model, Inpainter):
        outputs.append(model.inpaint(images * 2 - 1, model.make_mask(4, "centre")))
    assert outputs and not any(output.requires_grad for output in outputs)
    outputs[0].numpy()
