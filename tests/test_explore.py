"""The explorer's workings (no browser: see test_browser.py), attribute vectors and TensorBoard logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import genzoo
from genzoo.attributes import attribute_vectors, slant, thickness
from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.explore import MAP_PIXELS, Explorer
from genzoo.runs import load_run

from .test_contract import tiny_config
from .tiny_configs import tiny_overrides


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name in ("ae", "cvae", "context-encoder", "rbm"):
        genzoo.train(tiny_config(name, epochs=1, max_batches=30, eval_batches=1), root / name, progress=False)
    return root


@pytest.fixture(scope="module")
def ae(runs):
    return Explorer(load_run(runs / "ae"))


def test_map_pixels_and_codes_correspond(ae):
    low, high = ae.mean + ae.map_low @ ae.directions[:2], ae.mean + ae.map_high @ ae.directions[:2]
    assert torch.allclose(ae.map_to_code(0, MAP_PIXELS), low, atol=1e-5)  # bottom left
    assert torch.allclose(ae.map_to_code(MAP_PIXELS, 0), high, atol=1e-5)  # top right
    picture = ae.latent_map()
    assert picture.shape == (MAP_PIXELS, MAP_PIXELS, 3) and picture.std() > 5
    assert not np.array_equal(ae.decode_at(50, 50), ae.decode_at(430, 430))


def test_sliders_start_at_the_test_image_and_move_it(ae):
    start = ae.slider_start(3)
    assert len(start) == ae.num_sliders == 4  # a 4-D latent: one slider per dimension
    exact = ae.decode_code(ae.codes[3])
    assert np.abs(ae.decode_sliders(start, 3).astype(int) - exact).max() <= 2  # the sliders round to 0.01 std
    moved = list(start)
    moved[0] += 2
    assert not np.array_equal(ae.decode_sliders(moved, 3), exact)


def test_attribute_editing_at_zero_is_the_image_and_moves_away_from_it(ae):
    assert {"thickness", "slant"} <= set(ae.attributes)
    assert np.array_equal(ae.edit_attribute("thickness", 5, 0.0), ae.decode_code(ae.codes[5]))
    assert not np.array_equal(ae.edit_attribute("thickness", 5, 2.0), ae.decode_code(ae.codes[5]))
    strip = ae.edit_attribute("thickness", 5)
    assert strip.shape[1] > 8 * strip.shape[0]  # nine pictures in a row


def test_explorer_refuses_bad_indices_with_a_clear_error(ae):
    with pytest.raises(genzoo.GenzooError, match="out of range"):
        ae.interpolate(0, 10**6)
    with pytest.raises(genzoo.GenzooError, match="unknown attribute"):
        ae.edit_attribute("smile", 0)


def test_conditional_explorer_labels_change_decodings_and_samples(runs):
    explorer = Explorer(load_run(runs / "cvae"))
    first, last = explorer.class_names[0], explorer.class_names[-1]
    assert not np.array_equal(explorer.decode_at(240, 240, first), explorer.decode_at(240, 240, last))
    assert not np.array_equal(explorer.samples(0, first), explorer.samples(0, last))
    assert not np.array_equal(explorer.samples(0, first), explorer.samples(1, first))
    assert explorer.style_transfer(0).shape[1] > len(explorer.class_names) * explorer.style_transfer(0).shape[0]


def test_painted_mask_is_the_hole(runs):
    explorer = Explorer(load_run(runs / "context-encoder"))
    canvas = explorer.paint_canvas(0)
    nothing = explorer.inpaint(0, np.zeros(canvas.shape[:2]))
    painted = np.zeros(canvas.shape[:2])
    painted[60:200, 60:200] = 1
    filled = explorer.inpaint(0, painted)
    frame = (filled.shape[1] - 3 * (filled.shape[0] - 2 * (filled.shape[0] // 30))) // 4  # the grid's padding

    def panel(picture, k):  # masked, inpainted, original
        width = (picture.shape[1] - frame) // 3
        return picture[frame:-frame, frame + k * width: (k + 1) * width]

    assert np.array_equal(panel(nothing, 0), panel(nothing, 2))  # no hole: the masked image is the original
    assert not np.array_equal(panel(filled, 0), panel(filled, 2))


def test_boltzmann_sweeps_change_samples_and_chains_have_their_columns(runs):
    torch.set_num_threads(1)  # as `genzoo explore` runs: a few chains are too small to share out
    explorer = Explorer(load_run(runs / "rbm"))
    assert not np.array_equal(explorer.samples(0, sweeps=1), explorer.samples(0, sweeps=50))
    assert explorer.model.config.gibbs_steps == 5  # restored after sampling
    chain = explorer.gibbs_chain(0)
    assert chain.shape[1] > 10 * chain.shape[0] / 8  # 11 columns of 8 rows


def test_measured_attributes_on_drawn_strokes():
    thin, thick = torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    thin[..., 4:24, 13:15], thick[..., 4:24, 11:17] = 1, 1
    assert thickness(thick) > 2.5 * thickness(thin)
    right, left = torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)
    for row in range(4, 24):  # a stroke whose top is to the right: leaning right
        right[..., row, 24 - row // 2 - 2: 24 - row // 2] = 1
        left[..., row, row // 2 + 2: row // 2 + 4] = 1
    assert slant(right) > 0.3 and slant(left) < -0.3
    assert abs(float(slant(thin))) < 1e-6


def test_attribute_vectors_point_from_without_to_with():
    data = load_dataset("fake", "test")
    codes = thickness(data.images.float() / 255)[:, None].repeat(1, 3)  # codes that are the thickness itself
    vectors = attribute_vectors(codes, data)
    assert (vectors["thickness"] > 0).all()
    assert len([name for name in vectors if name.startswith("class ")]) == len(data.class_names)


def test_attribute_plot_is_drawn(runs, tmp_path):
    out = tmp_path / "attributes.png"
    assert main(["plot", str(runs / "ae"), "attributes", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_tensorboard_logs_the_metrics_and_the_preview_grids(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "gan"
    sets = [arg for override in tiny_overrides("gan") for arg in ("--set", override)]
    assert main(["train", "gan", "--dataset", "fake", "--epochs", "2", "--batch-size", "32", "--no-progress",
                 "--set", "max_batches=20", "--set", "eval_batches=1", *sets, "--run-dir", str(run),
                 "--tensorboard"]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()
    assert "step/discriminator_loss" in tags["scalars"] and any(tag.startswith("test/") for tag in tags["scalars"])
    assert [e.step for e in events.Scalars("step/discriminator_loss")] == [10, 20, 30, 40]
    assert len(events.Images("preview")) == 2


def test_tensorboard_flag_without_tensorboard_is_one_clear_error(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert main(["train", "gan", "--dataset", "fake", "--epochs", "1", "--no-progress",
                 "--run-dir", str(tmp_path / "r"), "--tensorboard"]) == 1
    assert "pip install 'genzoo[tensorboard]'" in capsys.readouterr().err
    assert not Path(tmp_path / "r").exists()


def test_explore_without_gradio_is_one_clear_error(runs, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_gradio(name, *args, **kwargs):
        if name == "gradio":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gradio)
    assert main(["explore", str(runs / "ae"), "--no-browser"]) == 1
    assert "pip install 'genzoo[explore]'" in capsys.readouterr().err
