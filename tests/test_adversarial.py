"""The adversarial family: the game's losses, one generator pass per iteration, k discriminator
steps, the context encoder's masks and baseline, the Laplacian pyramid, and collapse warnings."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import genzoo
from genzoo.data import Batch, BatchLoader, load_dataset
from genzoo.errors import ConfigError
from genzoo.models.adversarial import (
    MinibatchStd,
    ParameterAverage,
    adversarial_iteration,
    batch_statistics,
    discriminator_loss,
    generator_loss,
    mixes_batch,
    r1_penalty,
)
from genzoo.models.context_encoder import mean_fill, square_masks
from genzoo.models.dcgan import PixelNorm
from genzoo.models.lapgan import laplacian_pyramid, upsample
from genzoo.runs import build_model

from .test_contract import tiny_config


def test_generator_losses_are_the_papers_formulas():
    p = torch.tensor([0.1, 0.5, 0.9])
    logits = torch.log(p / (1 - p))
    assert torch.allclose(generator_loss(logits, "non-saturating"), (-p.log()).mean())
    assert torch.allclose(generator_loss(logits, "minimax"), (1 - p).log().mean())


def test_one_sided_label_smoothing_changes_only_the_real_targets():
    real, fake = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5])
    sig = torch.sigmoid
    expected = (-(0.9 * sig(real).log() + 0.1 * (1 - sig(real)).log())).mean() + (-(1 - sig(fake)).log()).mean()
    assert torch.allclose(discriminator_loss(real, fake, label_smoothing=0.1), expected)


def test_the_hinge_game_is_lim_and_ye_s_and_excludes_the_logistic_options():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, -0.5, 1.0])
    expected = (0 + 0.5 + 2.0) / 3 + (0 + 0.5 + 2.0) / 3  # relu(1 - real), relu(1 + fake), batch means
    assert discriminator_loss(real, fake, label_smoothing=0.0, kind="hinge").item() == pytest.approx(expected)
    assert generator_loss(fake, "hinge").item() == pytest.approx(2.5 / 3)
    spec = load_dataset("fake", "train").spec
    for option in ("generator_loss=minimax", "label_smoothing=0.1"):
        with pytest.raises(ConfigError, match="adversarial_loss=hinge takes neither"):
            build_model(genzoo.apply_overrides(tiny_config("gan"), ["adversarial_loss=hinge", option]), spec)


def test_a_hinge_iteration_steps_the_discriminator_on_the_hinge_then_the_generator_on_minus_its_logit():
    model = build_model(genzoo.apply_overrides(tiny_config("gan"), ["adversarial_loss=hinge", "learning_rate=0.01", "dropout=0"]),
                        load_dataset("fake", "train").spec)
    optimizers = model.configure_optimizers()
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(8, 1, 28, 28, generator=generator) * 2 - 1
    fake = model.generate(model.latents(8, generator), training=True)
    with torch.no_grad():
        before_real, before_fake = model.discriminate(real), model.discriminate(fake)
    metrics = adversarial_iteration(model.config, model.discriminate, optimizers, real=real, fake=fake, joint_batch=True)
    with torch.no_grad():
        after_fake = model.discriminate(fake)
    assert metrics["discriminator_loss"].item() == pytest.approx(
        ((1 - before_real).relu().mean() + (1 + before_fake).relu().mean()).item(), rel=1e-5)
    assert metrics["generator_loss"].item() == pytest.approx(-after_fake.mean().item(), rel=1e-5)
    assert not torch.equal(after_fake, before_fake)  # the discriminator stepped before the generator's loss


def test_the_r1_penalty_is_the_squared_input_gradient_and_enters_the_discriminator_step():
    """For a linear discriminator l(x) = w.x + b, E ||grad_x l||^2 = ||w||^2, and the penalty adds
    gamma * w to the gradient of w (Mescheder et al. 2018)."""
    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(784, 1)
    real = torch.rand(8, 1, 28, 28, generator=generator).requires_grad_(True)
    logits = linear(real.flatten(1)).squeeze(1)
    assert r1_penalty(logits, real).item() == pytest.approx(linear.weight.pow(2).sum().item(), rel=1e-5)

    def discriminate(images, labels=None):
        return linear(images.flatten(1)).squeeze(1)

    config = genzoo.apply_overrides(tiny_config("gan"), ["r1_weight=3"]).model_config
    fake_source = torch.nn.Parameter(torch.rand(8, 1, 28, 28, generator=generator))
    optimizers = {"discriminator": torch.optim.SGD(linear.parameters(), lr=0.0),
                  "generator": torch.optim.SGD([fake_source], lr=0.0)}
    real = real.detach()
    plain = discriminator_loss(discriminate(real), discriminate(fake_source.detach()), label_smoothing=0.0)
    expected = torch.autograd.grad(plain, linear.weight)[0] + 3 * linear.weight.detach()
    adversarial_iteration(config, discriminate, optimizers, real=real, fake=fake_source * 1, joint_batch=True)
    torch.testing.assert_close(linear.weight.grad, expected)


@pytest.mark.parametrize("name", ["gan", "cgan", "dcgan", "context-encoder", "lapgan"])
def test_the_generator_can_learn_at_its_own_rate(name):
    config = genzoo.apply_overrides(tiny_config(name), ["learning_rate=0.001", "generator_rate_ratio=0.25"])
    optimizers = build_model(config, load_dataset("fake", "train").spec).configure_optimizers()
    assert [group["lr"] for group in optimizers["discriminator"].param_groups] == [0.001]
    assert [group["lr"] for group in optimizers["generator"].param_groups] == [0.00025]
    with pytest.raises(ConfigError, match="generator_rate_ratio must be positive"):
        build_model(genzoo.apply_overrides(tiny_config(name), ["generator_rate_ratio=0"]),
                    load_dataset("fake", "train").spec)


def test_minibatch_std_is_the_mean_feature_spread_of_each_group_of_consecutive_images():
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    x[4:] = x[4]  # the second group: four copies of one image
    out = MinibatchStd(group_size=4)(x)
    assert torch.equal(out[:, :5], x)
    expected = x[:4].std(dim=0, unbiased=False).mean()
    assert torch.allclose(out[:4, 5], expected.expand(4), atol=1e-6)
    assert torch.allclose(out[4:, 5], torch.zeros(4), atol=1e-3)  # copies: no spread
    images = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(1))  # 6 = 2 groups of 3
    out = MinibatchStd(group_size=4)(images)
    assert out.shape == (6, 3, 3, 3)
    spread = images[:3].std(dim=0, unbiased=False).mean()
    assert torch.allclose(out[:3, 2], spread.expand(3, 3, 3), atol=1e-6)


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_a_minibatch_std_discriminator_sees_real_and_fake_batches_apart(name):
    """Groups of consecutive rows would mix real and fake images in one joint batch: the GAN
    discriminates them in two passes, each of its batch's own size."""
    config = genzoo.apply_overrides(tiny_config(name), ["minibatch_std_group=4"])
    data = load_dataset("fake", "train")
    model = build_model(config, data.spec)
    assert any(isinstance(m, MinibatchStd) for m in model.discriminator.modules())
    assert mixes_batch(model.discriminator) and not mixes_batch(build_model(tiny_config("gan"), data.spec).discriminator)
    sizes = []
    model.discriminator.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    batch = next(BatchLoader(data, batch_size=32, fmt=model.data_format, drop_last=True).batches(None, None))
    model.train_step(batch, model.configure_optimizers(), generator=torch.Generator().manual_seed(0))
    assert sizes == [32, 32, 32]  # real, fake (discriminator step), fake (generator step)


def test_a_parameter_average_is_the_exponential_moving_average_with_its_warm_up():
    network = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = ParameterAverage(network, decay=0.9)
    expected = network[0].weight.detach().clone()
    for n in range(30):
        with torch.no_grad():
            network[0].weight.add_(1.0)
        network(torch.randn(4, 2))  # moves the batch-norm statistics
        average.update(network)
        beta = min(0.9, (1 + n) / (10 + n))
        expected = beta * expected + (1 - beta) * network[0].weight.detach()
    assert torch.allclose(average.network[0].weight, expected, atol=1e-5)
    assert not torch.allclose(average.network[0].weight, network[0].weight)  # it lags the trained weights
    assert int(average.network[1].num_batches_tracked) == 30 and int(average.updates) == 30
    assert not any(p.requires_grad for p in average.network.parameters())


@pytest.mark.parametrize("name", ["gan", "cgan", "dcgan"])
def test_a_gan_with_a_generator_average_trains_one_and_samples_from_the_other(name, tmp_path):
    config = genzoo.apply_overrides(tiny_config(name), ["generator_average=0.99"])
    data = load_dataset("fake", "train")
    model = build_model(config, data.spec)
    optimizers = model.configure_optimizers()
    trained = {id(p) for group in optimizers["generator"].param_groups for p in group["params"]}
    assert trained.isdisjoint(id(p) for p in model.generator_average.parameters())
    loader = BatchLoader(data, batch_size=16, fmt=model.data_format, drop_last=True)
    for batch in list(loader.batches(None, None))[:3]:
        model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))
    model.eval()
    labels = torch.arange(4) % data.spec.num_classes if model.conditional else None
    latents = model.latents(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        sampled = model.generate(latents, labels)
        assert torch.equal(sampled, model.generate(latents, labels, training=False))
        assert not torch.allclose(sampled, model.generate(latents, labels, training=True))


def test_a_lapgan_samples_every_level_from_the_averaged_generators(monkeypatch):
    config = genzoo.apply_overrides(tiny_config("lapgan"), ["generator_average=0.99"])
    data = load_dataset("fake", "train")
    model = build_model(config, data.spec)
    optimizers = model.configure_optimizers()
    loader = BatchLoader(data, batch_size=16, fmt=model.data_format, drop_last=True)
    for batch in list(loader.batches(None, None))[:3]:
        model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))
    model.eval()
    averaged, trained = list(model.generators(training=False)), list(model.generators(training=True))
    assert trained[0] is model.coarse_generator and averaged[0] is model.generator_average.network[0]
    assert len(averaged) == len(trained) == model.config.levels
    sampled = model.sample(4, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(model, "generators", lambda training: trained)
    assert not torch.allclose(sampled, model.sample(4, generator=torch.Generator().manual_seed(1)))


def test_a_generator_average_survives_saving_and_loading(tmp_path):
    config = genzoo.apply_overrides(tiny_config("dcgan", epochs=1, max_batches=3, eval_batches=1),
                                    ["generator_average=0.99"])
    trained = genzoo.train(config, tmp_path / "run", progress=False).model.cpu().eval()
    loaded = genzoo.load(tmp_path / "run")
    assert int(loaded.generator_average.updates) == 3
    first = trained.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, loaded.sample(5, generator=torch.Generator().manual_seed(3)))



@pytest.mark.parametrize("name", ["gan", "dcgan", "lapgan"])
def test_a_shipped_gan_leaves_out_the_trained_generator_and_samples_the_same(name, tmp_path):
    """The zoo ships what sampling and evaluation use: the average, not the trained generator."""
    from safetensors.torch import save_file

    config = genzoo.apply_overrides(tiny_config(name, epochs=1, max_batches=3, eval_batches=1), ["generator_average=0.99"])
    run = tmp_path / "run"
    trained = genzoo.train(config, run, progress=False).model.cpu().eval()
    state = trained.state_dict()
    shipped = trained.shipped_state(state)
    left_out = set(state) - set(shipped)
    trained_generator = {f"{key}" for key in trained.trained_generators().state_dict()}
    assert len(left_out) == len(trained_generator) > 0
    assert not any(key.startswith("generator_average") for key in left_out)
    save_file({key: tensor.contiguous() for key, tensor in shipped.items()}, str(run / "model.safetensors"))
    loaded = genzoo.load(run)
    for key, tensor in loaded.state_dict().items():
        expected = state[key] if key not in left_out else state[trained._averaged_keys()[key]]
        assert torch.equal(tensor, expected), key
    first = trained.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, loaded.sample(5, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("name", ["dcgan", "context-encoder"])
def test_held_out_gan_losses_see_the_discriminator_as_training_does(name):
    """Batch norm by each batch's statistics (real and fake apart), running statistics untouched."""
    config = tiny_config(name)
    data = load_dataset("fake", "train")
    model = build_model(config, data.spec)
    optimizers = model.configure_optimizers()
    batches = list(BatchLoader(data, batch_size=16, fmt=model.data_format, drop_last=True).batches(None, None))
    for batch in batches[:3]:
        model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))
    model.eval()
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    with torch.no_grad():
        metrics = model.evaluate_step(batches[3], generator=torch.Generator().manual_seed(1))
        expected = torch.sigmoid(copy.deepcopy(model.discriminator).train()(batches[3].images)).mean()
        eval_mode = torch.sigmoid(model.discriminator(batches[3].images)).mean()
    assert torch.allclose(metrics["d_real"], expected, atol=1e-6) and not torch.allclose(metrics["d_real"], eval_mode)
    assert all(torch.equal(before[key], tensor) for key, tensor in model.state_dict().items())
    assert not model.discriminator.training
    with batch_statistics(model.discriminator):
        assert all(m.training for m in model.discriminator.modules() if isinstance(m, torch.nn.BatchNorm2d))


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *args: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize(("name", "network"), [("gan", "generator"), ("cgan", "generator"), ("dcgan", "generator"),
                                                ("context-encoder", "decoder"), ("lapgan", "coarse_generator")])
@pytest.mark.parametrize("k", [1, 2])
def test_one_generator_pass_and_k_discriminator_steps_per_iteration(name, network, k):
    config = genzoo.apply_overrides(tiny_config(name), [f"discriminator_steps={k}"])
    data = load_dataset("fake", "train")
    model = build_model(config, data.spec)
    optimizers = model.configure_optimizers()
    generator_calls = count_calls(getattr(model, network))
    steps = {"generator": 0, "discriminator": 0}
    for role, optimizer in optimizers.items():
        optimizer.register_step_post_hook(lambda *args, role=role: steps.__setitem__(role, steps[role] + 1))
    batch = next(BatchLoader(data, batch_size=32, fmt=model.data_format, drop_last=True).batches(None, None))
    metrics = model.train_step(batch, optimizers, generator=torch.Generator().manual_seed(0))
    assert generator_calls[0] == 1
    assert steps == {"generator": 1, "discriminator": k}
    assert {"discriminator_loss", "generator_loss", "d_real", "d_fake"} <= set(metrics)
    assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1


def test_square_masks_and_the_mean_fill_baseline():
    centre = square_masks(2, 28, 28, 14, "centre", None, "cpu")
    assert centre.shape == (2, 1, 28, 28) and centre.sum() == 2 * 14 * 14
    assert centre[0, 0, 7:21, 7:21].all() and centre[0, 0, 6].sum() == 0
    random = square_masks(50, 28, 28, 10, "random", torch.Generator().manual_seed(0), "cpu")
    assert (random.sum((1, 2, 3)) == 100).all()
    assert len({tuple(torch.nonzero(m[0])[0].tolist()) for m in random}) > 10  # holes move
    images = torch.zeros(1, 1, 28, 28)
    images[..., 5:23, 5:23] = 0.5  # a 2-pixel ring of 0.5 around the centre hole, zeros further out
    filled = mean_fill(images, centre[:1], ring=2)
    assert torch.allclose(filled[..., 7:21, 7:21], torch.tensor(0.5))
    assert torch.equal(filled * (1 - centre[:1]), images * (1 - centre[:1]))


def test_inpainting_keeps_the_context_pixels():
    data = load_dataset("fake", "test")
    model = build_model(tiny_config("context-encoder"), data.spec).eval()
    images = data.images[:4].float() / 255 * 2 - 1
    mask = model.make_mask(4, "centre")
    with torch.no_grad():
        filled = model.inpaint(images, mask)
    outside = (1 - mask).bool().expand_as(images)
    assert torch.allclose(filled[outside], ((images + 1) / 2)[outside])


def test_the_context_encoders_held_out_loss_is_the_loss_it_trains_on():
    """Held out as in training: the discriminator's loss plus 0.001 x adversarial + 0.999 x masked MSE,
    not the discriminator's plus the unweighted adversarial term (13.6 for the saturated zoo model)."""
    data = load_dataset("fake", "test")
    model = build_model(tiny_config("context-encoder"), data.spec)
    batch = Batch(images=data.images[:8].float() / 255 * 2 - 1, labels=data.labels[:8])
    with torch.no_grad():  # as the trainer evaluates
        held_out = model.evaluate_step(batch, generator=torch.Generator().manual_seed(0))
    config = model.config
    minimised = (config.adversarial_weight * held_out["generator_loss"]
                 + config.reconstruction_weight * held_out["reconstruction"])
    assert config.adversarial_weight != 1 and float(held_out["reconstruction"]) > 0
    torch.testing.assert_close(held_out["loss"], held_out["discriminator_loss"] + minimised)


def test_laplacian_pyramid_reconstructs_the_image_exactly():
    images = torch.rand(3, 1, 28, 28)
    coarse, residuals = laplacian_pyramid(images, levels=3)
    assert coarse.shape == (3, 1, 7, 7) and [r.shape[-1] for r in residuals] == [14, 28]
    level = coarse
    for residual in residuals:
        level = upsample(level) + residual
    assert torch.allclose(level, images, atol=1e-6)


def test_lapgan_samples_every_pyramid_level():
    model = build_model(tiny_config("lapgan"), load_dataset("fake", "test").spec).eval()
    with torch.no_grad():
        steps = model.sample_pyramid(2, torch.Generator().manual_seed(0))
    assert [s.shape[-1] for s in steps] == [7, 14, 28]


def test_sample_quality_is_logged_and_collapse_is_warned_about(tmp_path, capsys):
    from genzoo.evaluation.callbacks import SampleQuality
    from genzoo.evaluation.evaluator import Evaluator, EvaluatorNet
    from genzoo.runs import read_metrics

    torch.manual_seed(0)
    evaluator = Evaluator("random-v0", "fake", EvaluatorNet(num_classes=4).eval(), 0.25, ("a", "b", "c", "d"))
    config = tiny_config("gan", epochs=1, max_batches=2, eval_batches=1)
    trainer = genzoo.train(config, tmp_path / "run", progress=False,
                           callbacks=(SampleQuality(evaluator, num_samples=200),))
    _, epochs = read_metrics(tmp_path / "run")
    assert {"eval/classifier_score", "eval/classes_covered", "eval/class_entropy_bits"} <= set(epochs[0])
    # A generator that draws one image for every z: one class, and a warning.
    with torch.no_grad():
        for parameter in trainer.model.generator.parameters():
            parameter.zero_()
    metrics = SampleQuality(evaluator, num_samples=200).epoch_metrics(trainer)
    assert metrics["eval/classes_covered"] == 1 and metrics["eval/class_entropy_bits"] == 0
    assert "cover only 1 of 4 classes (mode collapse?" in capsys.readouterr().err
    assert math.isclose(metrics["eval/classifier_score"], 1.0, rel_tol=1e-6)


def test_a_spectrally_normalised_discriminator_keeps_each_layer_at_norm_one_and_reloads(tmp_path):
    """Miyato et al. (2018): each layer computes with W / sigma(W), sigma estimated by a power
    iteration that follows the weights as they train; batch norm is gone, so real and fake share
    one pass; the iteration's state (the singular vectors) is saved with the weights."""
    config = genzoo.apply_overrides(tiny_config("dcgan", epochs=1, max_batches=3, eval_batches=1),
                                    ["discriminator_norm=spectral", "learning_rate=0.01"])
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()
    loaded = genzoo.load(tmp_path / "run")
    images = load_dataset("fake", "test").images[:5].float() / 127.5 - 1
    with torch.no_grad():
        assert torch.equal(model.discriminate(images), loaded.discriminate(images))
    assert not mixes_batch(model.discriminator)
    layers = [m for m in model.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 3
    for layer in layers:
        raw = layer.parametrizations.weight.original.detach().flatten(1)
        assert torch.linalg.matrix_norm(raw, 2).item() < 0.8  # the stored weight is not normalised itself
        with torch.no_grad():  # more power iterations, as further training passes would make
            layer.train()
            for _ in range(50):
                layer.weight  # noqa: B018 (each access in training mode is one iteration)
            layer.eval()
        assert torch.linalg.matrix_norm(layer.weight.detach().flatten(1), 2).item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ConfigError, match="discriminator_norm apply to the radford discriminator only"):
        build_model(genzoo.apply_overrides(tiny_config("dcgan"), ["architecture=upsampling",
                                                                  "discriminator_norm=spectral"]),
                    load_dataset("fake", "train").spec)


def test_a_pixel_norm_generator_draws_each_image_on_its_own():
    """Karras et al.'s pixelwise normalisation: unit root-mean-square features at every pixel, and,
    unlike batch norm, an image's sample in a training pass does not depend on the rest of its
    batch; the generator has no batch norm left."""
    x = torch.randn(3, 16, 5, 5, generator=torch.Generator().manual_seed(0)) * 7
    out = PixelNorm()(x)
    assert torch.allclose(out.pow(2).mean(dim=1), torch.ones(3, 5, 5), atol=1e-5)
    assert torch.allclose(out * x.pow(2).mean(dim=1, keepdim=True).sqrt(), x, atol=1e-4)
    spec = load_dataset("fake", "train").spec
    for norm, alone in (("pixel", True), ("batch", False)):
        model = build_model(genzoo.apply_overrides(tiny_config("dcgan"), [f"generator_norm={norm}"]), spec).train()
        latents = torch.randn(6, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            together, first = model.generate(latents, training=True), model.generate(latents[:3], training=True)
        assert torch.allclose(together[:3], first, atol=1e-5) is alone
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.generator.modules()) is not alone
    with pytest.raises(ConfigError, match="generator_norm applies to the radford generator only"):
        build_model(genzoo.apply_overrides(tiny_config("dcgan"), ["architecture=upsampling", "generator_norm=pixel"]),
                    spec)


@pytest.mark.parametrize("norm", ["batch", "spectral"])
def test_extra_convolutions_keep_every_resolution_and_reload(tmp_path, norm):
    """extra_convs = 2: two 3x3 stride-1 convolutions at each of the generator's and the
    discriminator's resolutions, each keeping its input's shape; the model trains and reloads."""
    config = genzoo.apply_overrides(tiny_config("dcgan", epochs=1, max_batches=2, eval_batches=1),
                                    ["extra_convs=2", f"discriminator_norm={norm}"])
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()
    for network in (model.generator, model.discriminator):
        shapes: list = []
        hooks = [m.register_forward_hook(lambda m, i, o, shapes=shapes: shapes.append((i[0].shape, o.shape)))
                 for m in network.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
        with torch.no_grad():
            network(torch.randn(3, model.config.latent_dim) if network is model.generator
                    else torch.randn(3, model.spec.channels, model.spec.height, model.spec.width))
        for hook in hooks:
            hook.remove()
        assert len(shapes) == 4 and all(i == o for i, o in shapes)
        assert len({i[-1] for i, _ in shapes}) == 2  # two resolutions, two convolutions each
    loaded = genzoo.load(tmp_path / "run")
    z = torch.randn(4, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.generate(z), loaded.generate(z))
    with pytest.raises(ConfigError, match="extra_convs applies to the radford networks only"):
        build_model(genzoo.apply_overrides(tiny_config("dcgan"), ["architecture=upsampling", "extra_convs=1"]),
                    load_dataset("fake", "train").spec)


def test_lapgan_extra_convolutions_deepen_every_residual_level_and_reload(tmp_path):
    """extra_convs = 2 adds two size-keeping 3x3 convolutions to each residual generator and two
    after each of each residual discriminator's two strided ones (0 leaves the network as it was:
    see the seed test below)."""
    def convs(network: torch.nn.Module) -> int:
        return sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in network.modules())

    spec = load_dataset("fake", "train").spec
    plain = build_model(tiny_config("lapgan"), spec)
    config = genzoo.apply_overrides(tiny_config("lapgan", epochs=1, max_batches=2, eval_batches=1), ["extra_convs=2"])
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()
    for deep, shallow in zip(model.residual_generators, plain.residual_generators, strict=True):
        assert convs(deep) == convs(shallow) + 2
    for deep, shallow in zip(model.residual_discriminators, plain.residual_discriminators, strict=True):
        assert convs(deep) == convs(shallow) + 4
    steps = model.sample_pyramid(3, torch.Generator().manual_seed(0))
    assert [s.shape[-1] for s in steps] == [7, 14, 28] and torch.isfinite(steps[-1]).all()
    loaded = genzoo.load(tmp_path / "run")
    assert torch.equal(model.sample(4, generator=torch.Generator().manual_seed(1)),
                       loaded.sample(4, generator=torch.Generator().manual_seed(1)))


def test_a_convolutional_coarsest_lapgan_level_trains_and_reloads(tmp_path):
    """coarse_architecture = conv replaces the 7x7 MLPs by convolutional networks of coarse_channels;
    the cascade keeps its sizes, trains, and reloads to identical samples; the MLP's own options
    are refused beside it (the tiny config's coarse_dims of 16 is put back to the default first)."""
    spec = load_dataset("fake", "train").spec
    overrides = ["coarse_architecture=conv", "coarse_channels=4", "coarse_dims=512,512"]
    config = genzoo.apply_overrides(tiny_config("lapgan", epochs=1, max_batches=2, eval_batches=1), overrides)
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()
    for network in (model.coarse_generator, model.coarse_discriminator):
        widths = {m.out_channels for m in network.modules() if isinstance(m, torch.nn.Conv2d)}
        assert widths and widths <= {1, 4, 8}
    steps = model.sample_pyramid(3, torch.Generator().manual_seed(0))
    assert [tuple(s.shape[1:]) for s in steps] == [(1, 7, 7), (1, 14, 14), (1, 28, 28)]
    assert steps[0].abs().max() <= 1 and torch.isfinite(steps[-1]).all()
    loaded = genzoo.load(tmp_path / "run")
    assert torch.equal(model.sample(4, generator=torch.Generator().manual_seed(1)),
                       loaded.sample(4, generator=torch.Generator().manual_seed(1)))
    for wrong in ("coarse_dims=16", "dropout=0"):
        with pytest.raises(ConfigError, match="coarse_dims and dropout apply to the mlp coarsest GAN only"):
            build_model(genzoo.apply_overrides(tiny_config("lapgan"), [*overrides, wrong]), spec)


def test_a_radford_coarsest_lapgan_level_trains_and_reloads(tmp_path):
    """coarse_architecture = radford puts dcgan's networks (one strided layer, batch norm,
    coarse_channels wide, extra_convs deep) at the coarsest level: with 2 levels on 28x28 images a
    14x14 GAN under one residual level; it trains, reloads to identical samples, and a coarsest size
    of odd sides (3 levels: 7x7) is refused."""
    spec = load_dataset("fake", "train").spec
    overrides = ["levels=2", "coarse_architecture=radford", "coarse_channels=4", "coarse_dims=512,512", "extra_convs=1"]
    config = genzoo.apply_overrides(tiny_config("lapgan", epochs=1, max_batches=2, eval_batches=1), overrides)
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.coarse_generator.modules())
    for network in (model.coarse_generator, model.coarse_discriminator):
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())
        widths = {m.out_channels for m in network.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)}
        assert widths == ({1, 4} if network is model.coarse_generator else {4})
    steps = model.sample_pyramid(3, torch.Generator().manual_seed(0))
    assert [tuple(s.shape[1:]) for s in steps] == [(1, 14, 14), (1, 28, 28)]
    assert steps[0].abs().max() <= 1 and torch.isfinite(steps[-1]).all()
    loaded = genzoo.load(tmp_path / "run")
    assert torch.equal(model.sample(4, generator=torch.Generator().manual_seed(1)),
                       loaded.sample(4, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ConfigError, match="even coarsest sides, not 7x7"):
        build_model(genzoo.apply_overrides(tiny_config("lapgan"), [*overrides, "levels=3"]), spec)


def test_coarse_full_size_convs_give_the_radford_coarsest_gan_features_at_its_own_size(tmp_path):
    """coarse_full_size_convs = n: G's transposed convolution goes to coarse_channels / 2 planes at
    14x14 and n 3x3 convolutions follow there (the last to the image), D has n 3x3 ones at 14x14
    before its strided one; it trains and reloads, and it is refused under another architecture."""
    spec = load_dataset("fake", "train").spec
    overrides = ["levels=2", "coarse_architecture=radford", "coarse_channels=8", "coarse_dims=512,512",
                 "coarse_full_size_convs=2"]
    config = genzoo.apply_overrides(tiny_config("lapgan", epochs=1, max_batches=2, eval_batches=1), overrides)
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()

    def full_size_convs(network: torch.nn.Module, *, inputs: torch.Tensor) -> list[tuple[int, int]]:
        """(in, out) channels of the 3x3 convolutions that run on 14x14 maps."""
        found = []
        hooks = [m.register_forward_hook(lambda m, i, o: found.append((m.in_channels, m.out_channels))
                                         if m.kernel_size == (3, 3) and o.shape[-1] == 14 else None)
                 for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
        network(inputs)
        for hook in hooks:
            hook.remove()
        return found

    assert full_size_convs(model.coarse_generator, inputs=torch.randn(2, model.config.latent_dim)) == [(4, 4), (4, 1)]
    assert full_size_convs(model.coarse_discriminator, inputs=torch.randn(2, 14 * 14)) == [(1, 4), (4, 4)]
    steps = model.sample_pyramid(3, torch.Generator().manual_seed(0))
    assert [tuple(s.shape[1:]) for s in steps] == [(1, 14, 14), (1, 28, 28)] and steps[0].abs().max() <= 1
    loaded = genzoo.load(tmp_path / "run")
    assert torch.equal(model.sample(4, generator=torch.Generator().manual_seed(1)),
                       loaded.sample(4, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ConfigError, match="coarse_full_size_convs applies to the radford coarsest GAN only"):
        build_model(genzoo.apply_overrides(tiny_config("lapgan"), ["coarse_full_size_convs=1"]), spec)


def test_lapgan_r1_levels_coarsest_penalises_the_coarsest_discriminator_only():
    """With r1_levels = coarsest the R1 term reaches the coarsest discriminator's gradients and
    leaves every residual discriminator's as without R1; with "all" it reaches those too. (After a
    train step each discriminator's .grad is what its own step used.) It needs r1_weight > 0."""
    data = load_dataset("fake", "train")
    spec = data.spec

    def gradients(overrides):
        torch.manual_seed(0)
        model = build_model(genzoo.apply_overrides(tiny_config("lapgan"), ["dropout=0", *overrides]), spec)
        batch = next(BatchLoader(data, batch_size=8, fmt=model.data_format, drop_last=True).batches(None, None))
        model.train_step(batch, model.configure_optimizers(), generator=torch.Generator().manual_seed(1))
        return [torch.cat([p.grad.flatten() for p in d.parameters()]) for d in model.discriminators()]

    plain, coarsest, every = (gradients(o) for o in ([], ["r1_weight=10", "r1_levels=coarsest"], ["r1_weight=10"]))
    assert not torch.allclose(coarsest[0], plain[0]) and torch.allclose(coarsest[0], every[0])
    for level in range(1, len(plain)):
        assert torch.allclose(coarsest[level], plain[level])
        assert not torch.allclose(every[level], plain[level])
    with pytest.raises(ConfigError, match="needs r1_weight > 0"):
        build_model(genzoo.apply_overrides(tiny_config("lapgan"), ["r1_levels=coarsest"]), spec)


def test_the_upsampling_generator_trains_beside_a_radford_discriminator(tmp_path):
    """discriminator_architecture = radford: the lectures' generator (upsampling and 4x4 'same'
    convolutions) with Radford et al.'s discriminator (4x4 strided convolutions, no dropout), whose
    options (here extra_convs and the spectral norm) then apply; the pair trains and reloads
    identically; the other pair too; options of a network that is not there are refused."""
    from genzoo.models.dcgan import upsampling_discriminator
    from genzoo.models.layers import Dropout

    spec = load_dataset("fake", "train").spec
    overrides = ["architecture=upsampling", "discriminator_architecture=radford", "extra_convs=1",
                 "discriminator_norm=spectral"]
    config = genzoo.apply_overrides(tiny_config("dcgan", epochs=1, max_batches=2, eval_batches=1), overrides)
    trainer = genzoo.train(config, tmp_path / "run", progress=False)
    model = trainer.model.cpu().eval()

    def convs(network: torch.nn.Module, kernel: int, stride: int) -> int:
        return sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (kernel, kernel) and m.stride == (stride, stride)
                   for m in network.modules())

    assert any(isinstance(m, torch.nn.Upsample) for m in model.generator.modules())
    assert convs(model.generator, 3, 1) == 0  # extra_convs reaches the radford network only
    assert (convs(model.discriminator, 4, 2), convs(model.discriminator, 3, 1)) == (2, 2)
    assert not any(isinstance(m, Dropout) for m in model.discriminator.modules())
    assert any(isinstance(m, Dropout) for m in upsampling_discriminator(model.config, spec).modules())
    z = torch.randn(4, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.generate(z), genzoo.load(tmp_path / "run").generate(z))
    other = build_model(genzoo.apply_overrides(tiny_config("dcgan"), ["discriminator_architecture=upsampling"]), spec)
    assert not any(isinstance(m, torch.nn.Upsample) for m in other.generator.modules())
    assert any(isinstance(m, Dropout) for m in other.discriminator.modules())
    for wrong, message in ((["generator_norm=pixel"], "generator_norm applies to the radford generator only"),
                           (["discriminator_architecture=upsampling", "minibatch_std_group=4"],
                            "minibatch_std_group and discriminator_norm apply to the radford discriminator only"),
                           (["layers=3"], "multiples of 8, not 28x28")):
        with pytest.raises(ConfigError, match=message):
            build_model(genzoo.apply_overrides(tiny_config("dcgan"), [*overrides, *wrong]), spec)


@pytest.mark.parametrize(("name", "overrides", "weight_sum"), [
    ("dcgan", [], 651.2829372801),
    ("lapgan", [], 288.9072105103),
    ("lapgan", ["coarse_architecture=conv", "extra_convs=2"], 1044.682586270642),
    ("lapgan", ["levels=2", "coarse_architecture=radford", "coarse_channels=128", "extra_convs=2"], 1537.0874704673197),
])
def test_a_seed_gives_the_initial_weights_the_zoo_rows_were_trained_from(name, overrides, weight_sum):
    """The sum of every initial parameter and buffer of a network under seed 0: for the default
    networks as the code at git commit 189cf16 gave it (adding options such as extra_convs and
    discriminator_architecture must not reorder the random draws), for the shipped `lapgan` row's
    networks, and for the 2-level radford run in docs/zoo-notebook.md#lapgan, as the code that
    trained them gave them; otherwise `genzoo train --config` would no longer reproduce them."""
    torch.manual_seed(0)
    model = build_model(genzoo.apply_overrides(genzoo.default_config(name), overrides), load_dataset("fake", "train").spec)
    assert sum(v.double().sum().item() for v in model.state_dict().values()) == pytest.approx(weight_sum, rel=1e-9)
