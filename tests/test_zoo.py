"""The zoo: building it from runs, zoo:NAME wherever a run directory goes, checksums, and the
models genzoo ships (each loads, matches its checksums, samples or reconstructs, and its eval.json
holds the numbers `genzoo zoo` shows)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import genzoo
from genzoo import zoo
from genzoo.cli import main
from genzoo.evaluation.benchmark import Row
from genzoo.evaluation.suite import EvaluationOptions, evaluate_run, write_result
from genzoo.images import unenlarged
from genzoo.models.base import LatentCodec, Sampler
from genzoo.zoo.build import build, headline

from .test_contract import tiny_config


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo of two tiny models built from real (fake-data) runs."""
    base = tmp_path_factory.mktemp("zoo")
    runs, root = base / "runs", base / "zoo"
    rows = [Row("tiny-gan", "gan", 1, note="a tiny GAN"), Row("tiny-vae", "vae", 1, note="a tiny VAE", zoo_dtype="float32"),
            Row("tiny-iwae", "vae", 1, ("objective=iwae",), note="the tiny VAE fine-tuned", start_from="tiny-vae")]
    for row in rows:
        start = [f"train.init_from={runs / row.start_from}"] if row.start_from else []
        config = genzoo.apply_overrides(tiny_config(row.model, epochs=1, max_batches=3, eval_batches=1),
                                        [*row.overrides, *start])
        genzoo.train(config, runs / row.label, progress=False)
        result = evaluate_run(genzoo.load_run(runs / row.label), EvaluationOptions(metrics=("test-loss",)))
        write_result({**result, "weights_dtype": row.zoo_dtype}, runs / row.label / "eval.json")
    build(rows, runs, root)
    return root


@pytest.fixture
def installed(tiny_zoo, monkeypatch):
    monkeypatch.setattr(zoo, "zoo_root", lambda: tiny_zoo)
    return tiny_zoo


def test_build_writes_checksummed_entries_in_their_dtype(tiny_zoo):
    index = json.loads((tiny_zoo / "index.json").read_text())
    assert set(index["models"]) == {"tiny-gan", "tiny-vae", "tiny-iwae"}
    gan = tiny_zoo / "models" / "tiny-gan"
    assert {"model.safetensors", "config.toml", "meta.json", "eval.json", "metrics.jsonl", "MODEL_CARD.md"} <= set(
        index["models"]["tiny-gan"]["files"])
    assert all(t.dtype == torch.float16 for t in load_file(str(gan / "model.safetensors")).values() if t.is_floating_point())
    vae_weights = load_file(str(tiny_zoo / "models/tiny-vae/model.safetensors")).values()
    assert all(t.dtype == torch.float32 for t in vae_weights if t.is_floating_point())
    assert 'data_dir = ""' in (gan / "config.toml").read_text()
    seconds = [json.loads(line)["seconds"] for line in (gan / "metrics.jsonl").read_text().splitlines()
               if json.loads(line)["kind"] == "epoch"]
    card = (gan / "MODEL_CARD.md").read_text()
    assert f"median epoch {seconds[0]:.1f} s" in card and "`genzoo benchmark mnist --rows tiny-gan`" in card


def test_the_zoo_keeps_the_runs_grids_at_one_to_one(tiny_zoo):
    shipped = sorted((tiny_zoo / "models" / "tiny-gan" / "samples").glob("epoch_*.png"))
    run = tiny_zoo.parent / "runs" / "tiny-gan" / "samples"
    assert shipped
    for path in shipped:
        small, big = np.asarray(Image.open(path)), np.asarray(Image.open(run / path.name))
        assert small.shape[1] == 10 * (28 + 2) + 2  # ten columns of 28x28 cells, 2 px padding
        assert np.array_equal(small.repeat(2, axis=0).repeat(2, axis=1), big)


def test_unenlarged_keeps_an_image_that_is_not_an_exact_enlargement():
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8), dtype=np.uint8)
    big = pixels.repeat(2, axis=0).repeat(2, axis=1)
    assert np.array_equal(np.asarray(unenlarged(Image.fromarray(big))), pixels)
    big[3, 5] ^= 1
    image = Image.fromarray(big)
    assert unenlarged(image) is image


def test_a_fine_tuned_entry_retrains_from_the_zoo_model_it_started_from(installed, tmp_path, monkeypatch):
    entry = installed / "models" / "tiny-iwae"
    config = genzoo.read_config(entry / "config.toml")
    assert config.train.init_from == "zoo:tiny-vae"
    card = (entry / "MODEL_CARD.md").read_text()
    assert "starting from `zoo:tiny-vae`" in card and "`genzoo benchmark mnist --rows tiny-vae,tiny-iwae`" in card
    monkeypatch.chdir(tmp_path)
    config = genzoo.apply_overrides(config, ["data.dataset=fake", "train.max_batches=1", "train.eval_batches=1"])
    genzoo.train(config, tmp_path / "again", progress=False)
    shipped = load_file(str(installed / "models" / "tiny-vae" / "model.safetensors"))
    assert int(load_file(str(tmp_path / "again" / "model.safetensors"))["updates"]) == int(shipped["updates"]) + 1


def test_a_zoo_name_loads_wherever_a_run_does(installed, tmp_path, monkeypatch):
    model = genzoo.load("zoo:tiny-gan")
    images = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()
    run = genzoo.load_run("zoo:tiny-vae")
    assert run.name == "zoo:tiny-vae" and str(run.output_dir) == "runs/zoo-tiny-vae"
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "zoo:tiny-gan", "--num", "8", "--out", "s.png"]) == 0 and (tmp_path / "s.png").exists()
    assert main(["plot", "zoo:tiny-vae", "losses"]) == 0
    assert (tmp_path / "runs" / "zoo-tiny-vae" / "plots" / "losses.png").exists()
    assert main(["plot", "zoo:tiny-gan", "progress"]) == 0  # from the zoo's 1x grids
    assert (tmp_path / "runs" / "zoo-tiny-gan" / "plots" / "progress.png").exists()


def test_zoo_lists_names_and_headline_numbers(installed, capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "zoo:tiny-gan" in out and "zoo:tiny-vae" in out


def test_a_damaged_file_fails_its_checksum(installed, capsys):
    weights = installed / "models" / "tiny-gan" / "model.safetensors"
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        assert main(["sample", "zoo:tiny-gan", "--num", "1", "--out", "x.png"]) == 1
        err = capsys.readouterr().err
        assert "model.safetensors does not match its checksum" in err and "Traceback" not in err
    finally:
        weights.write_bytes(original)


def test_an_unknown_zoo_name_lists_the_known_ones(installed, capsys):
    assert main(["sample", "zoo:nope", "--num", "1", "--out", "x.png"]) == 1
    assert "unknown zoo model 'nope'; zoo models: tiny-gan, tiny-vae, tiny-iwae" in capsys.readouterr().err


SHIPPED = sorted(zoo.entries())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_loads_and_matches_its_eval(name):
    run = genzoo.load_run(f"zoo:{name}")
    entry = zoo.entries()[name]
    result = json.loads((entry.path / "eval.json").read_text())
    assert entry.headline == headline(result)
    generator = torch.Generator().manual_seed(0)
    if isinstance(run.model, Sampler):
        labels = torch.arange(4) % len(run.class_names) if run.model.conditional else None
        images = run.model.sample(4, labels=labels, generator=generator)
        assert images.shape[0] == 4 and torch.isfinite(images).all()
    if isinstance(run.model, LatentCodec):
        labels = torch.arange(2) if run.model.conditional else None
        assert torch.isfinite(run.model.decode(torch.zeros(2, run.model.latent_dim), labels)).all()


def test_the_shipped_zoo_stays_small():
    root = zoo.zoo_root()
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total < 60e6, total  # the bound, about 60 MB


@pytest.mark.parametrize("label, estimator", [("rbm", "AIS"), ("dbm", "bridge")])
def test_the_results_table_names_a_boltzmann_machines_log_z_estimator_and_its_checks(label, estimator):
    """The RBM's NLL is AIS's, with the bridge over h beside it; the DBM's is the bridge, between the
    mixture's estimate and the chains' reverse one, with its failed AIS beside it."""
    from genzoo.evaluation.benchmark import markdown, row_named

    result = json.loads((zoo.entries()[label].path / "eval.json").read_text())
    m = result["metrics"]
    line = next(x for x in markdown("mnist", [(row_named(label), result, 1.0)]).splitlines()
                if x.startswith(f"| `{label}` | {m['nll']:.2f} ({m['nll_low']:.2f} .. {m['nll_high']:.2f})"))
    assert result["protocol"]["likelihood"]["method"] == estimator
    if estimator == "bridge":
        assert m["log_z"] == m["log_z_bridge"] and m["nll_low"] == m["nll_mixture"] and m["nll_high"] == m["nll_reverse"]
        assert m["nll_low"] < m["nll"] < m["nll_high"] and f"NLL {m['nll_ais']:.2f}" in line
    else:
        assert "bridge between" in line and f"NLL {m['nll_bridge']:.2f}" in line


def test_every_shipped_result_fills_each_of_its_tables_columns():
    """Each results table a zoo entry's eval.json falls in draws one cell per column, none empty;
    and every entry falls in at least one table after the overview."""
    from genzoo.evaluation.benchmark import RESULT_TABLES

    for name, entry in zoo.entries().items():
        result = json.loads((entry.path / "eval.json").read_text())
        tables = [t for t in RESULT_TABLES if t.key in result["metrics"]]
        assert tables, name
        for table in tables:
            cells = table.cells(result)
            assert len(cells) == len(table.columns) and all(cells), (name, table.key, cells)


def test_a_row_that_starts_from_an_untrained_row_says_which_to_run_first(tmp_path):
    from genzoo.errors import GenzooError
    from genzoo.evaluation.benchmark import _train_row

    with pytest.raises(GenzooError, match="row iwae starts from row vae.*--rows vae` first"):
        _train_row(Row("iwae", "vae", 1, start_from="vae"), tmp_path / "iwae", "", progress=False)


def test_a_row_retrained_with_another_seed_differs_from_it_in_the_seed_and_directory_alone():
    """benchmarks/seed_spread.py's rows: `lapgan` sets train.seed=1; with_seed(2) must win over it
    and change nothing else, or the spread it measures is not the seed's."""
    import dataclasses

    from genzoo.evaluation.benchmark import row_named

    row = row_named("lapgan")
    seeded = row.with_seed(2)
    assert row.config("").train.seed == 1 and seeded.config("").train.seed == 2
    assert seeded.label == "lapgan-seed2" and (seeded.model, seeded.epochs, seeded.evaluation) == (
        row.model, row.epochs, row.evaluation)
    config = seeded.config("")
    assert dataclasses.replace(config, train=dataclasses.replace(config.train, seed=1)) == row.config("")
