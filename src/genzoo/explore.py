"""``genzoo explore RUN``: a local web app for playing with a trained model.

Two layers. :class:`Explorer` does the work with plain tensors and returns uint8 pictures (numpy
arrays), so it is tested without a browser and answers within a second on a CPU. :func:`build_app`
lays it out with Gradio (the optional extra ``pip install genzoo[explore]``): one tab per thing the
model can do, chosen by its capability classes, as the plots are.

- Latent map (encoder and decoder): the test codes as a scatter (a 2-D latent as it is, a
  higher-dimensional one projected on its first two principal directions); clicking a point decodes
  the code under the cursor.
- Latent sliders, interpolation between two test images, attribute vectors (see
  :mod:`genzoo.attributes`), and style transfer for conditional encoders.
- Samples with a seed and a label picker (conditional models); Gibbs sweeps for Boltzmann machines;
  DRAW's canvas step by step; painting a hole into a test image for inpainting models.
"""


import dataclasses
import functools
import io
import os
import sys

import numpy as np
import torch

from .data import ImageData, to_unit_range
from .errors import GenzooError
from .images import make_grid
from .models.base import Inpainter, LatentCodec, Sampler
from .models.boltzmann import BaseRate
from .models.draw import DRAW
from .models.rbm import RBM
from .plots import encode_all, pca, plt, test_inputs
from .runs import Run, load_split

MAP_PIXELS = 480  # side of the latent map picture; clicks are mapped back through it
ZOOM = 8  # nearest-neighbour enlargement of 28x28 digits on screen
MAP_PERCENTILES = (0.005, 0.995)  # the map spans this range of the test codes
SLIDERS = 8  # latent sliders shown (principal directions beyond a 8-D latent)
INTERPOLATION_STEPS = 10
ATTRIBUTE_STEPS = 9  # pictures from -2 to +2 times the attribute vector
CHAIN_RECORD = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
MAX_SWEEPS = 1000
PAINT_SCALE = 10  # the inpainting canvas shows test images at 10x


def enlarge(images: torch.Tensor, *, ncol: int, zoom: int = ZOOM) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> an enlarged uint8 grid (H', W', 3) for the browser."""
    grid = make_grid(images, nrow=ncol, padding=1)
    grid = grid.repeat(zoom, 0).repeat(zoom, 1)
    return np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid


class Explorer:
    """A loaded run with everything the tabs need precomputed (test codes, principal plane,
    attribute vectors). Every method returns a uint8 picture (H, W, 3)."""

    def __init__(self, run: Run, test: ImageData | None = None, *, seed: int = 0, max_codes: int = 2000):
        self.run, self.model, self.seed = run, run.model, seed
        self.codec = isinstance(self.model, LatentCodec)
        self.test = test
        if test is None and (self.codec or isinstance(self.model, (Inpainter, RBM))):
            self.test = load_split(run.config.data, "test")
        if self.test is not None:
            count = min(max_codes, len(self.test))
            self.test = dataclasses.replace(self.test, images=self.test.images[:count], labels=self.test.labels[:count])
        if self.codec:
            self._encode()

    # -- helpers ------------------------------------------------------------------------------
    @property
    def num_test(self) -> int:
        return 0 if self.test is None else len(self.test)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.run.class_names

    def _inputs(self, index: torch.Tensor):
        return test_inputs(self.run, self.test, index, self.seed)

    def _index(self, i: int) -> int:
        if not 0 <= int(i) < self.num_test:
            raise GenzooError(f"test image {i} is out of range 0..{self.num_test - 1}")
        return int(i)

    def _label(self, label: int | str | None) -> torch.Tensor | None:
        if not self.model.conditional:
            return None
        if isinstance(label, str):
            if label not in self.class_names:
                raise GenzooError(f"unknown label {label!r}; labels: {', '.join(self.class_names)}")
            label = self.class_names.index(label)
        return torch.tensor([int(label or 0)])

    def _display(self, images: torch.Tensor) -> torch.Tensor:
        return to_unit_range(images, self.model.data_format)

    @torch.no_grad()
    def _encode(self) -> None:
        from .attributes import attribute_vectors

        self.codes = encode_all(self.run, self.test, self.seed)
        self.mean, self.directions, self.explained = pca(self.codes, k=min(SLIDERS, self.codes.shape[1]))
        if self.codes.shape[1] == 2:  # a 2-D latent is its own map: no projection
            self.mean, self.directions = torch.zeros(2), torch.eye(2)
        plane = (self.codes - self.mean) @ self.directions[:2].T
        self.scales = ((self.codes - self.mean) @ self.directions.T).std(0).clamp(min=1e-6)
        low, high = MAP_PERCENTILES
        self.map_low = plane.quantile(low, dim=0)
        self.map_high = plane.quantile(high, dim=0)
        self.plane = plane
        self.vectors = attribute_vectors(self.codes, self.test)

    # -- latent map ---------------------------------------------------------------------------
    def latent_map(self) -> np.ndarray:
        """The test codes on the map plane, coloured by label; axes fill the picture exactly, so
        that pixel (x, y) is code :meth:`map_to_code` (x, y)."""
        inch = MAP_PIXELS / 100
        fig = plt.figure(figsize=(inch, inch), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        labels = self.test.labels.numpy() if self.test.class_names else np.zeros(self.num_test)
        ax.scatter(self.plane[:, 0], self.plane[:, 1], c=labels, cmap="tab10", s=6, vmin=-0.5, vmax=9.5, alpha=0.8)
        ax.set_xlim(float(self.map_low[0]), float(self.map_high[0]))
        ax.set_ylim(float(self.map_low[1]), float(self.map_high[1]))
        ax.set_axis_off()
        for label, name in enumerate(self.class_names[:10]):
            members = self.plane[self.test.labels == label]
            if len(members):
                centre = members.median(0).values
                ax.text(float(centre[0]), float(centre[1]), name, fontsize=13, weight="bold", ha="center",
                        va="center", color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7})
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        from PIL import Image

        return np.asarray(Image.open(buffer).convert("RGB"))

    def map_to_code(self, x: float, y: float) -> torch.Tensor:
        """Picture pixel (x right, y down) -> the latent code at that point of the map plane."""
        fraction = torch.tensor([x / MAP_PIXELS, 1 - y / MAP_PIXELS]).clamp(0, 1)
        point = self.map_low + fraction * (self.map_high - self.map_low)
        return self.mean + point @ self.directions[:2]

    @torch.no_grad()
    def decode_code(self, code: torch.Tensor, label: int | str | None = None) -> np.ndarray:
        return enlarge(self.model.decode(code.view(1, -1), self._label(label)), ncol=1, zoom=2 * ZOOM)

    def decode_at(self, x: float, y: float, label: int | str | None = None) -> np.ndarray:
        return self.decode_code(self.map_to_code(x, y), label)

    # -- sliders, interpolation, attributes, style ------------------------------------------
    @property
    def num_sliders(self) -> int:
        return len(self.directions) if self.codec else 0

    def slider_start(self, index: int) -> list[float]:
        """A test image's position along the slider directions, in standard deviations."""
        code = self.codes[self._index(index)]
        return [round(float(v), 2) for v in ((code - self.mean) @ self.directions.T) / self.scales]

    def decode_sliders(self, values: list[float], index: int = 0) -> np.ndarray:
        """Decode the code whose slider coordinates are ``values`` (standard deviations along the
        directions) and whose other coordinates are test image ``index``'s."""
        code = self.codes[self._index(index)]
        along = (code - self.mean) @ self.directions.T
        target = torch.tensor(values, dtype=code.dtype) * self.scales
        code = code + (target - along) @ self.directions
        label = self.test.labels[index] if self.model.conditional else None
        return self.decode_code(code, None if label is None else int(label))

    @torch.no_grad()
    def interpolate(self, first: int, second: int) -> np.ndarray:
        """Test image A, the decodings of (1 - t) z_A + t z_B, test image B."""
        index = torch.tensor([self._index(first), self._index(second)])
        images, labels = self._inputs(index)
        t = torch.linspace(0, 1, INTERPOLATION_STEPS).view(-1, 1)
        path = (1 - t) * self.codes[index[0]] + t * self.codes[index[1]]
        path_labels = None if labels is None else labels[:1].repeat(INTERPOLATION_STEPS)
        decoded = self.model.decode(path, path_labels)
        shown = self._display(images)
        return enlarge(torch.cat([shown[:1], decoded, shown[1:]]), ncol=INTERPOLATION_STEPS + 2)

    @property
    def attributes(self) -> list[str]:
        if not self.codec:
            return []
        names = list(self.vectors)
        return [n for n in names if not n.startswith("class ")] if self.model.conditional else names

    @torch.no_grad()
    def edit_attribute(self, name: str, index: int, amount: float | None = None) -> np.ndarray:
        """Test image ``index``'s code plus multiples of attribute ``name``'s vector: the row
        -2 .. +2 (or the single multiple ``amount``)."""
        if name not in self.vectors:
            raise GenzooError(f"unknown attribute {name!r}; attributes: {', '.join(self.attributes)}")
        index = self._index(index)
        steps = torch.linspace(-2, 2, ATTRIBUTE_STEPS) if amount is None else torch.tensor([float(amount)])
        codes = self.codes[index] + steps[:, None] * self.vectors[name]
        label = self.test.labels[index].repeat(len(steps)) if self.model.conditional else None
        images = self.model.decode(codes, label)
        return enlarge(images, ncol=len(steps), zoom=ZOOM if amount is None else 2 * ZOOM)

    @torch.no_grad()
    def style_transfer(self, index: int) -> np.ndarray:
        """The test image, then its code decoded with every label."""
        index = self._index(index)
        images, labels = self._inputs(torch.tensor([index]))
        classes = len(self.class_names)
        decoded = self.model.decode(self.codes[index].repeat(classes, 1), torch.arange(classes))
        return enlarge(torch.cat([self._display(images), decoded]), ncol=classes + 1)

    def test_image(self, index: int) -> np.ndarray:
        images, _ = self._inputs(torch.tensor([self._index(index)]))
        return enlarge(self._display(images), ncol=1, zoom=2 * ZOOM)

    # -- samplers ------------------------------------------------------------------------------
    @torch.no_grad()
    def samples(self, seed: int, label: int | str | None = None, *, num: int = 16, sweeps: int | None = None) -> np.ndarray:
        """``num`` samples with ``seed`` (all of ``label`` for conditional models); Boltzmann
        machines take ``sweeps`` Gibbs sweeps instead of their configured number."""
        model = self.model
        labels = None if not model.conditional else self._label(label).repeat(num)
        generator = torch.Generator().manual_seed(int(seed))
        if sweeps is not None and isinstance(model, BaseRate):
            sweeps = max(1, min(int(sweeps), MAX_SWEEPS))
            saved = model.config
            model.config = dataclasses.replace(saved, gibbs_steps=sweeps)
            try:
                images = model.sample(num, generator=generator)
            finally:
                model.config = saved
        else:
            images = model.sample(num, labels=labels, generator=generator)
        return enlarge(images, ncol=8)

    @torch.no_grad()
    def gibbs_chain(self, seed: int, rows: int = 4) -> np.ndarray:
        """RBM chains: rows start at test images, then at base-rate samples; columns after 0, 1,
        2, 5, ... 1000 sweeps."""
        generator = torch.Generator().manual_seed(int(seed))
        index = torch.randperm(self.num_test, generator=generator)[:rows]
        images, _ = self._inputs(index)
        starts = torch.cat([images.flatten(1), self.model.random_start(rows, generator)])
        shown = self.model.gibbs_chain(starts, CHAIN_RECORD[-1], generator, record=list(CHAIN_RECORD))
        return enlarge(torch.stack(shown, dim=1).flatten(0, 1), ncol=len(CHAIN_RECORD), zoom=4)

    @torch.no_grad()
    def canvas_steps(self, seed: int, rows: int = 4) -> np.ndarray:
        """DRAW: the canvas after each step, one row per sample."""
        canvases, _ = self.model.generate(rows, torch.Generator().manual_seed(int(seed)))
        steps = canvases.shape[0]
        shown = torch.arange(steps) if steps <= 16 else torch.linspace(0, steps - 1, 16).round().long()
        return enlarge(canvases[shown].transpose(0, 1).flatten(0, 1), ncol=len(shown), zoom=4)

    # -- inpainting ----------------------------------------------------------------------------
    def paint_canvas(self, index: int) -> np.ndarray:
        return enlarge(self._display(self._inputs(torch.tensor([self._index(index)]))[0]), ncol=1, zoom=PAINT_SCALE)[
            PAINT_SCALE:-PAINT_SCALE, PAINT_SCALE:-PAINT_SCALE]  # without the grid's frame

    @torch.no_grad()
    def inpaint(self, index: int, mask: np.ndarray | str) -> np.ndarray:
        """Masked test image, its inpainting and the original. ``mask`` is "centre", "random", or a
        painted (H', W') array over the enlarged image, non-zero where the hole is."""
        images, _ = self._inputs(torch.tensor([self._index(index)]))
        if isinstance(mask, str):
            hole = self.model.make_mask(1, mask, torch.Generator().manual_seed(self.seed))
        else:
            painted = torch.as_tensor(np.asarray(mask) > 0, dtype=torch.float32)[None, None]
            hole = torch.nn.functional.adaptive_max_pool2d(painted, images.shape[-2:]).expand_as(images)
        filled = self.model.inpaint(images, hole)
        shown = self._display(images)
        return enlarge(torch.cat([shown * (1 - hole), filled, shown]), ncol=3, zoom=2 * ZOOM)


# -- the Gradio app ------------------------------------------------------------------------------
def _require_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    try:
        import gradio
    except ImportError:
        raise GenzooError("genzoo explore needs Gradio: pip install 'genzoo[explore]' (or pip install gradio)") from None
    return gradio


def build_app(explorer: Explorer):
    """The Gradio Blocks app of an explorer: one tab per capability of its model."""
    gr = _require_gradio()
    model, run = explorer.model, explorer.run
    names = list(explorer.class_names)
    label_picker = None

    def guarded(function):
        @functools.wraps(function)  # Gradio reads the signature (a gr.SelectData parameter gets the click)
        def call(*args):
            try:
                return function(*args)
            except GenzooError as exc:
                raise gr.Error(str(exc)) from None
        return call

    with gr.Blocks(title=f"genzoo explore: {run.name}", analytics_enabled=False) as app:
        gr.Markdown(f"## genzoo explore: `{run.name}` ({run.config.model})")
        if model.conditional:
            label_picker = gr.Radio(names, value=names[0], label="label", elem_id="label-picker")
        with gr.Tabs():
            if explorer.codec:
                last = explorer.num_test - 1
                with gr.Tab("Latent map"):
                    plane = "the 2-D latent" if model.latent_dim == 2 else (
                        f"the first two principal directions of the {model.latent_dim}-D codes "
                        f"({float(explorer.explained[:2].sum()):.0%} of their variance)")
                    gr.Markdown(f"Test images on {plane}. Click anywhere to decode that point.")
                    with gr.Row():
                        latent_map = gr.Image(explorer.latent_map(), label="latent map", interactive=False,
                                              elem_id="latent-map", show_label=False, height=MAP_PIXELS,
                                              width=MAP_PIXELS)
                        decoded = gr.Image(explorer.decode_at(MAP_PIXELS / 2, MAP_PIXELS / 2, names[0] if names else None),
                                           label="decoded", interactive=False, elem_id="decoded")

                    point = gr.State((MAP_PIXELS / 2, MAP_PIXELS / 2))  # the last point clicked
                    if model.conditional:
                        def on_click(label, event: gr.SelectData):
                            return explorer.decode_at(*event.index, label), tuple(event.index)

                        latent_map.select(guarded(on_click), label_picker, [decoded, point])
                        # another label decodes the same point again: the style stays, the class changes
                        label_picker.change(guarded(lambda label, xy: explorer.decode_at(*xy, label)),
                                            [label_picker, point], decoded)
                    else:
                        def on_click(event: gr.SelectData):
                            return explorer.decode_at(*event.index)

                        latent_map.select(guarded(on_click), None, decoded)
                with gr.Tab("Sliders"):
                    start = gr.Number(0, label=f"start from test image (0..{last})", precision=0, minimum=0,
                                      maximum=last)
                    what = "latent dimension" if model.latent_dim == 2 or model.latent_dim <= SLIDERS else "principal direction"
                    sliders = [gr.Slider(-3, 3, value=v, step=0.05, label=f"{what} {i + 1} (std)")
                               for i, v in enumerate(explorer.slider_start(0))]
                    slid = gr.Image(explorer.decode_sliders(explorer.slider_start(0), 0), label="decoded",
                                    interactive=False, elem_id="slid")
                    for slider in sliders:
                        slider.change(guarded(lambda i, *v: explorer.decode_sliders(list(v), int(i))), [start, *sliders], slid)
                    start.change(guarded(lambda i: explorer.slider_start(int(i))), start, sliders)
                with gr.Tab("Interpolation"):
                    with gr.Row():
                        first = gr.Number(0, label="test image A", precision=0, minimum=0, maximum=last)
                        second = gr.Number(1, label="test image B", precision=0, minimum=0, maximum=last)
                    path = gr.Image(explorer.interpolate(0, 1), label="A, decoded path, B", interactive=False)
                    for box in (first, second):
                        box.change(guarded(lambda a, b: explorer.interpolate(int(a), int(b))), [first, second], path)
                if explorer.attributes:
                    with gr.Tab("Attributes"):
                        gr.Markdown("Mean code of test images with the attribute minus the mean code of those "
                                    "without, added to a test image's code.")
                        with gr.Row():
                            attribute = gr.Dropdown(explorer.attributes, value=explorer.attributes[0], label="attribute",
                                                    elem_id="attribute")
                            which = gr.Number(0, label="test image", precision=0, minimum=0, maximum=last)
                        amount = gr.Slider(-2, 2, value=0, step=0.1, label="amount (times the vector)", elem_id="amount")
                        with gr.Row():
                            edited = gr.Image(explorer.edit_attribute(explorer.attributes[0], 0, 0.0), label="edited",
                                              interactive=False)
                            strip = gr.Image(explorer.edit_attribute(explorer.attributes[0], 0), label="-2 .. +2",
                                             interactive=False)
                        inputs = [attribute, which, amount]
                        for control in inputs:
                            control.change(guarded(lambda a, i, t: (explorer.edit_attribute(a, int(i), t),
                                                                    explorer.edit_attribute(a, int(i)))),
                                           inputs, [edited, strip])
                if model.conditional:
                    with gr.Tab("Style transfer"):
                        gr.Markdown("A test image's code decoded with every label: the code keeps the style.")
                        source = gr.Number(0, label="test image", precision=0, minimum=0, maximum=last)
                        styled = gr.Image(explorer.style_transfer(0), label="input, then labels", interactive=False)
                        source.change(guarded(lambda i: explorer.style_transfer(int(i))), source, styled)
            if isinstance(model, Sampler):
                with gr.Tab("Samples"):
                    seed = gr.Number(0, label="seed", precision=0, minimum=0, elem_id="seed")
                    controls = [seed]
                    if isinstance(model, BaseRate):
                        sweeps = gr.Slider(1, MAX_SWEEPS, value=min(model.config.gibbs_steps, MAX_SWEEPS), step=1,
                                           label="Gibbs sweeps")
                        controls.append(sweeps)
                    first_label = names[0] if model.conditional else None
                    shown = gr.Image(explorer.samples(0, first_label,
                                                      sweeps=controls[1].value if len(controls) > 1 else None),
                                     label="samples", interactive=False, elem_id="samples")

                    def draw(*args):
                        seed_value, rest = args[0], list(args[1:])
                        sweep_count = rest.pop(0) if isinstance(model, BaseRate) else None
                        label = rest.pop(0) if model.conditional else None
                        return explorer.samples(int(seed_value), label, sweeps=sweep_count)

                    inputs = controls + ([label_picker] if model.conditional else [])
                    for control in inputs:
                        control.change(guarded(draw), inputs, shown)
            if isinstance(model, RBM):
                with gr.Tab("Gibbs chain"):
                    gr.Markdown("Rows start at test images, then at base-rate samples; columns after "
                                + ", ".join(map(str, CHAIN_RECORD)) + " sweeps.")
                    chain_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    chain = gr.Image(explorer.gibbs_chain(0), label="chains", interactive=False)
                    chain_seed.change(guarded(lambda s: explorer.gibbs_chain(int(s))), chain_seed, chain)
            if isinstance(model, DRAW):
                with gr.Tab("Canvas"):
                    canvas_seed = gr.Number(0, label="seed", precision=0, minimum=0)
                    canvas = gr.Image(explorer.canvas_steps(0), label="canvas at each step", interactive=False)
                    canvas_seed.change(guarded(lambda s: explorer.canvas_steps(int(s))), canvas_seed, canvas)
            if isinstance(model, Inpainter):
                with gr.Tab("Inpainting"):
                    gr.Markdown("Paint a hole over the test image (any colour), or pick a centre or random hole.")
                    picture = gr.Number(0, label="test image", precision=0, minimum=0, maximum=explorer.num_test - 1)
                    with gr.Row():
                        editor = gr.ImageEditor(value={"background": explorer.paint_canvas(0), "layers": [],
                                                       "composite": None},
                                                label="paint the hole", image_mode="RGB", height=320,
                                                brush=gr.Brush(default_size=24, colors=["#ff0000"]), elem_id="editor")
                        result = gr.Image(explorer.inpaint(0, "centre"), label="masked, inpainted, original",
                                          interactive=False, elem_id="inpainted")
                    with gr.Row():
                        centre = gr.Button("centre hole")
                        scattered = gr.Button("random hole")
                        fill = gr.Button("inpaint what I painted", variant="primary")

                    def painted(index, value):
                        layers = [np.asarray(layer) for layer in (value or {}).get("layers") or [] if layer is not None]
                        if not layers:
                            raise GenzooError("paint over the image first")
                        mask = np.zeros(layers[0].shape[:2], dtype=bool)
                        for layer in layers:
                            mask |= (layer[..., 3] > 0) if layer.ndim == 3 and layer.shape[2] == 4 else (layer.max(-1) > 0)
                        return explorer.inpaint(int(index), mask)

                    picture.change(guarded(lambda i: ({"background": explorer.paint_canvas(int(i)), "layers": [],
                                                        "composite": None}, explorer.inpaint(int(i), "centre"))),
                                   picture, [editor, result])
                    centre.click(guarded(lambda i: explorer.inpaint(int(i), "centre")), picture, result)
                    scattered.click(guarded(lambda i: explorer.inpaint(int(i), "random")), picture, result)
                    fill.click(guarded(painted), [picture, editor], result)
        gr.Markdown("Made by [genzoo](https://github.com/) from the run's own weights; nothing leaves this machine.")
    return app


def theme():
    """Gradio's default look with the system's fonts: the default theme fetches Google fonts,
    which fails (and logs console errors) on a machine without internet."""
    gr = _require_gradio()
    fonts = [gr.themes.Font("system-ui"), gr.themes.Font("Segoe UI"), gr.themes.Font("Helvetica"), "sans-serif"]
    mono = [gr.themes.Font("ui-monospace"), gr.themes.Font("Consolas"), "monospace"]
    return gr.themes.Default(font=fonts, font_mono=mono)


def serve(run: Run, *, port: int = 7860, open_browser: bool = True, host: str = "127.0.0.1") -> None:
    """Build the explorer of ``run`` and serve it until Ctrl-C."""
    _require_gradio()
    torch.set_num_threads(1)  # answers are a few images: one thread avoids the cost of waking the others
    print(f"genzoo: preparing the explorer of {run.name} ...", file=sys.stderr)
    app = build_app(Explorer(run))
    print(f"genzoo: explorer of {run.name} at http://{host}:{port}/ (Ctrl-C stops it)", file=sys.stderr)
    try:
        app.launch(server_name=host, server_port=port, inbrowser=open_browser, theme=theme(), quiet=True,
                   footer_links=[], ssr_mode=False)
    except OSError as exc:  # Gradio's "cannot find empty port" and socket errors
        reason = "the port is in use" if "empty port" in str(exc) else str(exc)
        raise GenzooError(f"cannot serve on {host}:{port}: {reason}; pick another port with --port") from None
