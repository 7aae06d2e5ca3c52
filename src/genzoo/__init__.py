"""genzoo: the classic generative image models in one library and command-line tool.

The public API::

    import genzoo
    config = genzoo.default_config("vae")              # a RunConfig (frozen dataclasses)
    trainer = genzoo.train(config, "runs/vae")         # trains, checkpoints, writes grids
    model = genzoo.load("runs/vae")                    # the trained model, eval mode
    images = model.sample(16, generator=torch.Generator().manual_seed(0))
"""

__version__ = "0.1.0"

from .config import DataConfig, RunConfig, TrainConfig, apply_overrides  # noqa: E402
from .data import DataSpec, ImageData, load_dataset  # noqa: E402
from .errors import GenzooError  # noqa: E402
from .registry import MODELS, get_entry  # noqa: E402
from .runs import Run, default_config, load, load_run, read_config, train  # noqa: E402

__all__ = [
    "MODELS",
    "DataConfig",
    "DataSpec",
    "GenzooError",
    "ImageData",
    "Run",
    "RunConfig",
    "TrainConfig",
    "__version__",
    "apply_overrides",
    "default_config",
    "get_entry",
    "load",
    "load_dataset",
    "load_run",
    "read_config",
    "train",
]
