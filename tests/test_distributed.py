"""Data-parallel training with torch.distributed (gloo, 2 CPU processes): the same weights as one
process with the same global batch, per-rank state in checkpoints, a killed run that resumes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

import genzoo
import genzoo.runs
from genzoo import distributed
from genzoo.config import to_toml
from genzoo.data import BatchLoader, load_dataset
from genzoo.distributed import Group
from genzoo.models.gan import GAN

from .test_contract import tiny_config

pytestmark = pytest.mark.slow  # a few seconds per process start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deterministic_config(name: str, epochs: int = 2):
    """Steps without random draws, so that one and two processes must agree to float rounding:
    the VAE's reparameterisation scaled to zero, the GAN without dropout (its latents are made
    from the real images by `latents_from_images`)."""
    config = tiny_config(name, epochs=epochs, max_batches=6, eval_batches=1)
    overrides = {"vae": ["epsilon_sigma=0"], "gan": ["dropout=0"]}[name]
    return genzoo.apply_overrides(config, overrides)


def latents_from_images(self, batch, optimizers, *, generator):
    """GAN.train_step with latents that are a fixed function of each real image (test only)."""
    from genzoo.models.adversarial import adversarial_iteration

    latents = 3 * batch.images.flatten(1)[:, : self.config.latent_dim]
    return adversarial_iteration(self.config, self.discriminate, optimizers, real=batch.images,
                                 fake=self.generate(latents), joint_batch=True)


def worker(rank: int, world: int, port: int, name: str, run_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    GAN.train_step = latents_from_images
    with distributed.process_group_closed_at_exit():
        genzoo.train(deterministic_config(name), run_dir, progress=False, sample_quality=False)


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_two_processes_reach_the_weights_of_one(name, tmp_path, monkeypatch):
    """Tolerance 1e-4 relative: two half-batch mean gradients averaged are the full-batch mean
    summed in another order (float32 rounding, ~1e-7), which Adam's normalised steps magnify."""
    monkeypatch.setattr(GAN, "train_step", latents_from_images)
    genzoo.train(deterministic_config(name), tmp_path / "one", progress=False, sample_quality=False)
    mp.spawn(worker, args=(2, free_port(), name, str(tmp_path / "two")), nprocs=2, join=True)
    one, two = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    initial = genzoo.runs.build_model(deterministic_config(name), load_dataset("fake", "train").spec).state_dict()
    for key in one:
        assert torch.allclose(one[key].float(), two[key].float(), rtol=1e-4, atol=1e-6), key
    assert any(not torch.allclose(one[key], initial[key]) for key in one if one[key].is_floating_point())
    checkpoint = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert checkpoint["world_size"] == 2 and len(checkpoint["ranks"]) == 2
    steps = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "step" for r in steps) == 12  # written once, by rank 0


def test_each_rank_takes_its_share_of_every_global_batch():
    data = load_dataset("fake", "train")
    from genzoo.data import DataFormat

    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    whole = BatchLoader(data, batch_size=32, fmt=DataFormat(), drop_last=True)
    shards = [BatchLoader(data, batch_size=32, fmt=DataFormat(), drop_last=True, group=Group(rank, 2)) for rank in (0, 1)]
    for full, first, second in zip(*(loader.batches(order, None, limit=3) for loader in (whole, *shards)), strict=True):
        assert torch.equal(torch.cat([first.images, second.images]), full.images)
        assert torch.equal(torch.cat([first.labels, second.labels]), full.labels)


def cli(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "genzoo.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def test_a_killed_distributed_run_resumes_to_the_same_weights(tmp_path):
    config = tmp_path / "vae.toml"
    config.write_text(to_toml(genzoo.apply_overrides(tiny_config("vae", epochs=2, max_batches=6, eval_batches=1),
                                                     ["binarize=dynamic"])))
    done = cli("train", "--config", config, "--run-dir", tmp_path / "full", "--nproc", 2, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    killed = cli("train", "--config", config, "--run-dir", tmp_path / "killed", "--nproc", 2, "--no-progress",
                 env={"GENZOO_FAULT": "step:8"})
    assert killed.returncode != 0
    resumed = cli("train", "--resume", tmp_path / "killed", "--nproc", 2, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    full, again = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("full", "killed"))
    for key in full:
        assert torch.equal(full[key], again[key]), key
    wrong = cli("train", "--resume", tmp_path / "killed", "--epochs", 3, "--no-progress")
    assert wrong.returncode == 1 and "trained by 2 process(es); resume it with as many" in wrong.stderr


def averaging_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    group = distributed.setup("cpu")
    parameters = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    optimizer = torch.optim.SGD(parameters, lr=1.0)
    distributed.average_gradients_before_steps(optimizer, group)
    for parameter in parameters:
        parameter.grad = torch.full_like(parameter, float(rank + 1))
    optimizer.step()
    torch.save([p.detach() for p in parameters], f"{out}.{rank}")
    distributed.teardown()


def test_every_step_uses_the_mean_gradient_of_the_ranks(tmp_path):
    mp.spawn(averaging_worker, args=(2, free_port(), str(tmp_path / "p")), nprocs=2, join=True)
    for rank in (0, 1):
        for parameter in torch.load(tmp_path / f"p.{rank}", weights_only=True):
            assert torch.equal(parameter, torch.full_like(parameter, -1.5))  # SGD step of the mean gradient 1.5
