"""Pictures of what a model learned: ``genzoo plot RUN_DIR KIND --out FILE.png``.

Each kind is a function of a loaded run and the run's test split; the models it applies to are the
ones with the capability it needs (see :data:`PLOTS`).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; genzoo never opens windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from .data import ImageData, to_model_input, to_unit_range  # noqa: E402
from .errors import GenzooError  # noqa: E402
from .fileio import atomic_write_bytes  # noqa: E402
from .images import interleave_rows, make_grid  # noqa: E402
from .models.base import Denoiser, Inpainter, LatentCodec, Sampler, VisibleFilters  # noqa: E402
from .models.draw import DRAW  # noqa: E402
from .models.lapgan import LAPGAN, upsample  # noqa: E402
from .models.rbm import RBM  # noqa: E402
from .runs import Run, load_split, read_metrics  # noqa: E402

MANIFOLD_PERCENTILES = (0.01, 0.99)  # the manifold grid spans this range of the test codes
ENCODE_BATCH = 500


@dataclass(frozen=True)
class PlotOptions:
    num: int = 0  # kind-specific count (grid side, rows, samples); 0 = the kind's default
    seed: int = 0


def _figure_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig, out: Path) -> Path:
    if out.suffix.lower() != ".png":
        plt.close(fig)
        raise GenzooError(f"{out}: expected a .png file name")
    if not out.parent.is_dir():
        plt.close(fig)
        raise GenzooError(f"{out.parent}: directory does not exist")
    atomic_write_bytes(out, _figure_bytes(fig))
    return out


def grid_figure(
    images: torch.Tensor,
    *,
    ncol: int,
    title: str,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
):
    """A titled matplotlib figure of an image grid, with optional row and column labels."""
    grid = make_grid(images, nrow=ncol, padding=2)
    height, width = images.shape[-2:]
    fig, ax = plt.subplots(figsize=(max(3.0, grid.shape[1] / 60), max(3.0, grid.shape[0] / 60) + 0.4))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([2 + (width + 2) * i + width / 2 for i in range(len(col_labels))] if col_labels else [])
    ax.set_yticks([2 + (height + 2) * i + height / 2 for i in range(len(row_labels))] if row_labels else [])
    if col_labels:
        ax.set_xticklabels(col_labels, fontsize=8)
        ax.xaxis.tick_top()
    if row_labels:
        ax.set_yticklabels(row_labels, fontsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


# -- helpers --------------------------------------------------------------------------------
def test_inputs(run: Run, test: ImageData, index: torch.Tensor, seed: int):
    generator = torch.Generator().manual_seed(seed)
    images = to_model_input(test.images[index], run.model.data_format, generator)
    labels = test.labels[index] if run.model.conditional else None
    return images, labels


def _display(run: Run, images: torch.Tensor) -> torch.Tensor:
    return to_unit_range(images, run.model.data_format)


@torch.no_grad()
def encode_all(run: Run, test: ImageData, seed: int) -> torch.Tensor:
    """Codes (N, latent_dim) of the whole test split, in batches."""
    codes = []
    for start in range(0, len(test), ENCODE_BATCH):
        index = torch.arange(start, min(start + ENCODE_BATCH, len(test)))
        images, labels = test_inputs(run, test, index, seed + start)
        codes.append(run.model.encode(images, labels))
    return torch.cat(codes)


def pca(codes: torch.Tensor, k: int = 2):
    """Principal directions of ``codes``: returns (mean (D,), directions (k, D), variance ratio (k,))."""
    mean = codes.mean(0)
    _, singular, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    variance = singular.pow(2)
    if len(vh) < k:  # fewer codes than directions (a tiny test split): complete with the first axes
        vh = torch.cat([vh, torch.eye(codes.shape[1])[: k - len(vh)]])
        variance = torch.cat([variance, torch.zeros(k - len(variance))])
    return mean, vh[:k], variance[:k] / variance.sum().clamp(min=1e-12)


def _pick(test: ImageData, count: int, seed: int) -> torch.Tensor:
    """``count`` random test images (repeating when the split is smaller, so that rows stay full)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(test), generator=generator)
    return order[torch.arange(count) % len(order)]


def _one_per_class(test: ImageData, count: int) -> torch.Tensor:
    """The first test image of each class (cycling through classes) or the first ``count`` images."""
    if not test.class_names:
        return torch.arange(min(count, len(test)))
    firsts = [torch.nonzero(test.labels == c).flatten()[:1] for c in range(len(test.class_names))]
    firsts = torch.cat([f for f in firsts if len(f)])
    return firsts[torch.arange(count) % len(firsts)]


# -- plot kinds -----------------------------------------------------------------------------
@torch.no_grad()
def plot_samples(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Samples from the prior; conditional models draw one row per label."""
    model = run.model
    generator = torch.Generator().manual_seed(options.seed)
    if model.conditional:
        return plot_conditional(run, test, out, options)
    num = options.num or 100
    images = model.sample(num, generator=generator)
    return save_figure(grid_figure(images, ncol=10, title=f"{run.config.model}: {num} samples (seed {options.seed})"), out)


@torch.no_grad()
def plot_conditional(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """One row per label: samples drawn for that label."""
    if not run.model.conditional:
        raise GenzooError(f"plot 'conditional' needs a conditional model; {run.config.model!r} is not")
    classes = len(run.class_names)
    per_row = options.num or 10
    labels = torch.arange(classes).repeat_interleave(per_row)
    images = run.model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(options.seed))
    fig = grid_figure(images, ncol=per_row, title=f"{run.config.model}: samples per label",
                      row_labels=list(run.class_names))
    return save_figure(fig, out)


@torch.no_grad()
def plot_reconstructions(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Test images (odd rows) over their reconstructions (even rows)."""
    rows = options.num or 5
    index = _pick(test, rows * 10, options.seed)
    images, labels = test_inputs(run, test, index, options.seed)
    outputs = run.model.reconstruct(images, labels)
    grid = interleave_rows(_display(run, images), outputs, row_length=10)
    row_labels = ["input", "output"] * rows
    return save_figure(grid_figure(grid, ncol=10, title=f"{run.config.model}: reconstructions of test images",
                                   row_labels=row_labels), out)


@torch.no_grad()
def plot_denoising(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Noisy input / clean image / denoised output, for test images."""
    if run.model.corruption == "none":
        raise GenzooError(f"{run.config.model!r} was trained without input noise; train `dae` "
                          "(or set noise=salt) to plot denoising")
    rows = options.num or 4
    index = _pick(test, rows * 10, options.seed)
    clean, labels = test_inputs(run, test, index, options.seed)
    noisy = run.model.corrupt(clean, torch.Generator().manual_seed(options.seed))
    denoised = run.model.reconstruct(noisy, labels)
    grid = interleave_rows(noisy, _display(run, clean), denoised, row_length=10)
    fig = grid_figure(grid, ncol=10, title=f"{run.config.model}: denoising {run.model.corruption}",
                      row_labels=["noisy", "clean", "denoised"] * rows)
    return save_figure(fig, out)


@torch.no_grad()
def plot_latent(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """The test set's codes coloured by label; codes of more than 2 dimensions are projected on
    their first two principal components."""
    codes = encode_all(run, test, options.seed).cpu()
    if codes.shape[1] == 1:
        codes = torch.cat([codes, torch.zeros_like(codes)], 1)
        xlabel, ylabel = "z[0]", ""
    elif codes.shape[1] == 2:
        xlabel, ylabel = "z[0]", "z[1]"
    else:
        mean, directions, ratio = pca(codes)
        codes = (codes - mean) @ directions.T
        xlabel, ylabel = (f"PC{i + 1} ({100 * float(r):.0f}% of variance)" for i, r in enumerate(ratio))
    points = codes.numpy()
    fig, ax = plt.subplots(figsize=(7, 6))
    if run.class_names:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=test.labels.numpy(), cmap="tab10", s=2,
                             vmin=-0.5, vmax=9.5 if len(run.class_names) <= 10 else len(run.class_names) - 0.5)
        colorbar = fig.colorbar(scatter, ax=ax, ticks=range(len(run.class_names)))
        colorbar.ax.set_yticklabels(run.class_names)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=2)
    dims = run.model.latent_dim
    ax.set_title(f"{run.config.model}: test set in its {dims}-D latent space"
                 + (" (PCA)" if dims > 2 else ""), fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return save_figure(fig, out)


@torch.no_grad()
def plot_manifold(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """n x n images decoded over a rectangle of a 2-D latent (z[0] left to right, z[1] bottom to
    top) spanning the 1st..99th percentiles of the test set's codes on each axis, so that the
    grid covers where the data actually lie (a VAE's codes need not fill its prior's quantiles).
    Codes of more than 2 dimensions: the plane of their first two principal components through
    their mean. Conditional models decode with the first label.
    """
    model = run.model
    n = options.num or 20
    codes = encode_all(run, test, options.seed).cpu()
    if model.latent_dim == 2:
        origin, directions = torch.zeros(2), torch.eye(2)
        how = "z[0], z[1]"
    else:
        origin, directions, _ = pca(codes)
        how = "first two principal components"
    projected = (codes - origin) @ directions.T  # (N, D) -> (N, 2)
    lows, highs = torch.quantile(projected, torch.tensor(MANIFOLD_PERCENTILES), dim=0)
    xs, ys = torch.linspace(lows[0], highs[0], n), torch.linspace(lows[1], highs[1], n)
    grid_y, grid_x = torch.meshgrid(ys.flip(0), xs, indexing="ij")  # top row = largest z[1]
    coords = torch.stack([grid_x.flatten(), grid_y.flatten()], 1)  # (n*n, 2)
    labels = torch.zeros(n * n, dtype=torch.int64) if model.conditional else None
    images = model.decode(origin + coords @ directions, labels)
    title = f"{run.config.model}: decoded latent grid over {how}, test codes' 1st..99th percentiles"
    if labels is not None:
        title += f", label {run.class_names[0]}"
    return save_figure(grid_figure(images, ncol=n, title=title), out)


@torch.no_grad()
def plot_interpolation(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Rows: test image A, decodings of (1 - t) z_A + t z_B for t in 0..1, test image B."""
    rows, steps = options.num or 8, 10
    index = _pick(test, 2 * rows, options.seed)
    images, labels = test_inputs(run, test, index, options.seed)
    codes = run.model.encode(images, labels)
    start, end = codes[:rows], codes[rows:]
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    path = (1 - t) * start[:, None] + t * end[:, None]  # (rows, steps, D)
    path_labels = None if labels is None else labels[:rows].repeat_interleave(steps)
    decoded = run.model.decode(path.flatten(0, 1), path_labels)  # (rows*steps, D) -> images
    decoded = decoded.view(rows, steps, *decoded.shape[1:])
    shown = _display(run, images)
    grid = torch.cat([shown[:rows, None], decoded, shown[rows:, None]], 1).flatten(0, 1)
    col_labels = ["A"] + [f"{float(x):.1f}" for x in t.flatten()] + ["B"]
    fig = grid_figure(grid, ncol=steps + 2, title=f"{run.config.model}: latent interpolation between test images",
                      col_labels=col_labels)
    return save_figure(fig, out)


ATTRIBUTE_STEPS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


@torch.no_grad()
def plot_attributes(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Latent attribute editing: one row per attribute (stroke thickness, slant, and for
    unconditional models a few classes), a test image's code plus -2..2 times the attribute's
    vector (mean code with the attribute minus mean code without), decoded."""
    from .attributes import attribute_vectors

    codes = encode_all(run, test, options.seed)
    vectors = attribute_vectors(codes, test)
    names = ["thickness", "slant"]
    if not run.model.conditional:
        names += [name for name in vectors if name.startswith("class ")][: options.num or 3]
    index = _pick(test, len(names), options.seed)
    _, labels = test_inputs(run, test, index, options.seed)
    steps = torch.tensor(ATTRIBUTE_STEPS)
    edited = torch.cat([codes[i] + steps[:, None] * vectors[name] for i, name in zip(index, names, strict=True)])
    step_labels = None if labels is None else labels.repeat_interleave(len(steps))
    images = run.model.decode(edited, step_labels)
    fig = grid_figure(images, ncol=len(steps), title=f"{run.config.model}: attribute vectors added to test codes",
                      row_labels=names, col_labels=[f"{t:+g}" for t in ATTRIBUTE_STEPS])
    return save_figure(fig, out)


@torch.no_grad()
def plot_style_transfer(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Encode a test image with its own label, decode the code with every label: the code keeps
    the style (slant, thickness), the label sets the class."""
    if not run.model.conditional:
        raise GenzooError(f"plot 'style-transfer' needs a conditional model; {run.config.model!r} is not")
    rows = options.num or 8
    classes = len(run.class_names)
    index = _one_per_class(test, rows)
    images, labels = test_inputs(run, test, index, options.seed)
    codes = run.model.encode(images, labels)  # (rows, D)
    all_labels = torch.arange(classes).repeat(rows)
    decoded = run.model.decode(codes.repeat_interleave(classes, 0), all_labels).view(rows, classes, *images.shape[1:])
    grid = torch.cat([_display(run, images)[:, None], decoded], 1).flatten(0, 1)
    fig = grid_figure(grid, ncol=classes + 1, title=f"{run.config.model}: style of each test image, decoded with every label",
                      col_labels=["input", *run.class_names])
    return save_figure(fig, out)


@torch.no_grad()
def plot_inpainting(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Rows of masked test images, their inpainting, and the originals (centre holes, then random)."""
    rows = options.num or 2
    index = _pick(test, rows * 10, options.seed)
    images, _ = test_inputs(run, test, index, options.seed)
    panels, labels = [], []
    for kind in ("centre", "random"):
        mask = run.model.make_mask(len(images), kind, torch.Generator().manual_seed(options.seed))
        panels.append(interleave_rows(_display(run, images * (1 - mask)), run.model.inpaint(images, mask),
                                      _display(run, images), row_length=10))
        labels += [f"masked ({kind})", "inpainted", "original"] * rows
    fig = grid_figure(torch.cat(panels), ncol=10, title=f"{run.config.model}: inpainting test images",
                      row_labels=labels)
    return save_figure(fig, out)


@torch.no_grad()
def plot_pyramid(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """LAPGAN samples from coarse to fine, one row per sample: the coarsest image, then for every
    finer level the coarser image upsampled (l_k, "up"), the residual its generator adds (h_k,
    mid-grey = 0, stretched by the labelled gain so the largest shown |h| reaches black or white)
    and their sum I_k = l_k + h_k. Everything is shown enlarged to the final size."""
    rows = options.num or 8
    steps = run.model.sample_pyramid(rows, torch.Generator().manual_seed(options.seed))
    size = steps[-1].shape[-2:]

    def shown(image: torch.Tensor) -> torch.Tensor:
        return F.interpolate(image, size=size, mode="nearest")

    columns, col_labels = [_display(run, shown(steps[0]))], [f"{steps[0].shape[-2]}x{steps[0].shape[-1]}"]
    for coarser, level in itertools.pairwise(steps):
        condition = upsample(coarser)
        residual = level - condition
        gain = 1 / max(residual.abs().max().item(), 1e-6)
        columns += [_display(run, shown(condition)), _display(run, shown(residual * gain)),
                    _display(run, shown(level))]
        col_labels += ["up", f"+h\n(x{gain:.1f})", f"=\n{level.shape[-2]}x{level.shape[-1]}"]
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # (rows, columns, C, H, W) -> (rows*columns, C, H, W)
    fig = grid_figure(grid, ncol=len(columns), title=f"{run.config.model}: coarse to fine", col_labels=col_labels)
    return save_figure(fig, out)


CHAIN_STEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@torch.no_grad()
def plot_chain(run: Run, test: ImageData, out: Path, options: PlotOptions) -> Path:
    """Gibbs chains over steps: rows 1..n start at test images, rows n+1..2n at random binary
    images; columns show p(v|h) after 0, 1, 2, 5, ..., 1000 sweeps."""
    rows = options.num or 4
    generator = torch.Generator().manual_seed(options.seed)
    images, _ = test_inputs(run, test, _pick(test, rows, options.seed), options.seed)
    starts = torch.cat([images.flatten(1), run.model.random_start(rows, generator)])
    shown = run.model.gibbs_chain(starts, CHAIN_STEPS[-1], generator, record=list(CHAIN_STEPS))
    grid = torch.stack(shown, dim=1).flatten(0, 1)  # (2 rows, steps, C, H, W) -> (2 rows * steps, C, H, W)
    fig = grid_figure(grid, ncol=len(CHAIN_STEPS), title=f"{run.config.model}: Gibbs chains (data start, then random)",
                      col_labels=[str(s) for s in CHAIN_STEPS], row_labels=["data"] * rows + ["random"] * rows)
    return save_figure(fig, out)


@torch.no_grad()
def plot_filters(run: Run, test: ImageData | None, out: Path, options: PlotOptions) -> Path:
    """The first ``num`` (default 100) hidden units' weights as images, each scaled to its own range."""
    weight = run.model.visible_filters().cpu()  # (H, V)
    count = min(options.num or 100, len(weight))
    tiles = weight[:count]
    low, high = tiles.min(1, keepdim=True).values, tiles.max(1, keepdim=True).values
    tiles = ((tiles - low) / (high - low).clamp(min=1e-12)).view(count, *run.model.spec.shape)
    return save_figure(grid_figure(tiles, ncol=10, title=f"{run.config.model}: weights of {count} hidden units"), out)


@torch.no_grad()
def plot_canvas(run: Run, test: ImageData | None, out: Path, options: PlotOptions) -> Path:
    """DRAW generating: the canvas after each step (time left to right) for several samples, with
    the write window drawn on it in red."""
    from matplotlib.patches import Rectangle

    rows = options.num or 6
    canvases, windows = run.model.generate(rows, torch.Generator().manual_seed(options.seed))  # (T, rows, C, H, W)
    steps = canvases.shape[0]
    grid = canvases.transpose(0, 1).flatten(0, 1)  # (rows, T, ...) -> (rows*T, ...)
    fig = grid_figure(grid, ncol=steps, title=f"{run.config.model}: the canvas at each of {steps} steps",
                      col_labels=[str(t + 1) for t in range(steps)])
    height, width = canvases.shape[-2:]
    n = run.model.config.write_size
    for t, window in enumerate(windows):
        if window is None:
            continue
        centre, stride = window
        for row in range(rows):
            half = float(stride[row]) * n / 2
            x0 = 2 + (width + 2) * t + float(centre[row, 0]) - half - 0.5
            y0 = 2 + (height + 2) * row + float(centre[row, 1]) - half - 0.5
            fig.axes[0].add_patch(Rectangle((x0, y0), 2 * half, 2 * half, fill=False, edgecolor="red", linewidth=0.6,
                                            clip_on=True))
    return save_figure(fig, out)


def plot_progress(run: Run, test: ImageData | None, out: Path, options: PlotOptions) -> Path:
    """The per-epoch grids (same latents every epoch) as one picture of training over time: the
    first ``num`` rows (default 2) of up to 8 evenly spaced epochs, first and last included.
    With ``--out X.gif``: every epoch's whole grid as the frames of an animation."""
    from PIL import Image

    files = sorted((run.path / "samples").glob("epoch_*.png"))
    if not files:
        raise GenzooError(f"{run.path / 'samples'} holds no per-epoch grids yet")
    if out.suffix.lower() == ".gif":
        frames = [Image.open(f).convert("P") for f in files]
        buffer = io.BytesIO()
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=400, loop=0)
        if not out.parent.is_dir():
            raise GenzooError(f"{out.parent}: directory does not exist")
        atomic_write_bytes(out, buffer.getvalue())
        return out
    chosen = sorted({round(i * (len(files) - 1) / max(1, min(8, len(files)) - 1)) for i in range(min(8, len(files)))})
    rows = options.num or 2
    strips, labels = [], []
    for index in chosen:
        grid = np.asarray(Image.open(files[index]).convert("L"))
        cell = (grid.shape[1] - 2) // 10  # 10 columns of (side + 2 px padding), in a run 2x enlarged, in the zoo not
        strips.append(grid[: rows * cell + 2])
        labels.append(f"epoch {int(files[index].stem.split('_')[1])}")
    width = 6 * (0.98 - 0.15)  # the axes' width in inches; each strip keeps its aspect ratio
    height = sum(width * s.shape[0] / s.shape[1] for s in strips) * 1.15 + 0.5
    fig, axes = plt.subplots(len(strips), 1, figsize=(6, height))
    fig.subplots_adjust(left=0.15, right=0.98, bottom=0.1 / height, top=1 - 0.4 / height, hspace=0.15)
    for ax, strip, label in zip(np.atleast_1d(axes), strips, labels, strict=True):
        ax.imshow(strip, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{run.config.model}: the same latents after each epoch", fontsize=10)
    return save_figure(fig, out)


def plot_losses(run: Run, test: ImageData | None, out: Path, options: PlotOptions) -> Path:
    """Training loss per step (and its running mean), train and test loss per epoch."""
    return save_figure(loss_figure(run.path, run.config.model), out)


def loss_figure(run_dir: Path, title: str):
    steps, epochs = read_metrics(run_dir)
    if not steps:
        raise GenzooError(f"{run_dir}: metrics.jsonl has no training steps yet")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = np.array([r["step"] for r in steps])
    y = np.array([r["loss"] for r in steps])
    axes[0].plot(x, y, lw=0.5, alpha=0.4, label="per step")
    window = max(1, len(y) // 50)
    if window > 1:
        smooth = np.convolve(y, np.ones(window) / window, mode="valid")
        axes[0].plot(x[window - 1 :], smooth, lw=1.5, label=f"running mean ({window} steps)")
    axes[0].set_xlabel("step")
    axes[0].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5, integer=True))  # long runs: 6-digit steps
    axes[0].set_ylabel("training loss")
    axes[0].legend()
    epoch_x = [r["epoch"] for r in epochs]
    for key, style in (("train/loss", "o-"), ("test/loss", "s-")):
        values = [r.get(key) for r in epochs]
        if any(v is not None for v in values):
            axes[1].plot(epoch_x, values, style, label=key)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("loss (mean per image)")
    if epochs:
        axes[1].legend()
    fig.suptitle(f"{title}: losses")
    return fig


@dataclass(frozen=True)
class PlotKind:
    function: Callable[[Run, ImageData, Path, PlotOptions], Path]
    needs: tuple[type, ...]  # capabilities the model must have
    needs_description: str
    summary: str
    test_images: bool = True  # draws test images (loads the test split); False for samples, weights, logs

    def applies_to(self, model) -> bool:
        return all(isinstance(model, capability) for capability in self.needs)


PLOTS: dict[str, PlotKind] = {
    "samples": PlotKind(plot_samples, (Sampler,), "a model that samples", "samples from the prior", test_images=False),
    "conditional": PlotKind(plot_conditional, (Sampler,), "a conditional model", "one row of samples per label", test_images=False),
    "reconstructions": PlotKind(plot_reconstructions, (LatentCodec,), "an encoder and decoder",
                                "test images over their reconstructions"),
    "denoising": PlotKind(plot_denoising, (LatentCodec, Denoiser), "a denoising model",
                          "noisy / clean / denoised test images"),
    "latent": PlotKind(plot_latent, (LatentCodec,), "an encoder", "test set scatter in latent space, by label"),
    "manifold": PlotKind(plot_manifold, (LatentCodec,), "a decoder", "grid decoded over a 2-D latent"),
    "interpolation": PlotKind(plot_interpolation, (LatentCodec,), "an encoder and decoder",
                              "decoded path between two test images"),
    "attributes": PlotKind(plot_attributes, (LatentCodec,), "an encoder and decoder",
                           "attribute vectors (thickness, slant, classes) added to a test image's code"),
    "style-transfer": PlotKind(plot_style_transfer, (LatentCodec,), "a conditional encoder and decoder",
                               "a digit's style decoded with every label"),
    "inpainting": PlotKind(plot_inpainting, (Inpainter,), "an inpainting model",
                           "masked / inpainted / original test images"),
    "pyramid": PlotKind(plot_pyramid, (LAPGAN,), "a LAPGAN", "samples from coarse to fine", test_images=False),
    "chain": PlotKind(plot_chain, (RBM,), "a restricted Boltzmann machine", "Gibbs chains over steps"),
    "filters": PlotKind(plot_filters, (VisibleFilters,), "a Boltzmann machine", "first-layer weights as images", test_images=False),
    "canvas": PlotKind(plot_canvas, (DRAW,), "DRAW", "the canvas step by step, with the write window", test_images=False),
    "progress": PlotKind(plot_progress, (), "", "the per-epoch grids over training (.png, or .gif animation)", test_images=False),
    "losses": PlotKind(plot_losses, (), "", "loss curves from metrics.jsonl", test_images=False),
}


def kinds_for(model) -> list[str]:
    """The plot kinds that apply to ``model``."""
    kinds = [name for name, kind in PLOTS.items() if kind.applies_to(model)]
    if not model.conditional:
        kinds = [k for k in kinds if k not in ("conditional", "style-transfer")]
    if not isinstance(model, Denoiser) or model.corruption == "none":
        kinds = [k for k in kinds if k != "denoising"]
    return kinds


def make_plot(run: Run, kind: str, out: str | Path, options: PlotOptions = PlotOptions()) -> Path:
    """Draw plot ``kind`` of a loaded run into ``out`` (a .png path)."""
    if kind not in PLOTS:
        raise GenzooError(f"unknown plot kind {kind!r}; kinds: {', '.join(PLOTS)}")
    plot = PLOTS[kind]
    if not plot.applies_to(run.model):
        raise GenzooError(f"plot {kind!r} needs {plot.needs_description}; model {run.config.model!r} has none "
                          f"(its plots: {', '.join(kinds_for(run.model))})")
    test = None
    if plot.test_images:
        test = load_split(run.config.data, "test")
    return plot.function(run, test, Path(out), options)
