"""The evaluator: genzoo's own feature network and classifier for 28x28 grayscale datasets.

Inception weights cannot be downloaded on every machine and do not suit 28x28 digits, so genzoo
ships a small CNN per dataset, trained by ``python -m genzoo.evaluation.train_evaluator`` on the
training split only. Its penultimate layer (``num_features`` ReLU units) gives the features of the
Frechet and kernel distances and of precision/recall; its softmax gives the classifier scores.
Every number genzoo reports names the evaluator version it used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from torch import nn

from ..errors import GenzooError

WEIGHTS_PACKAGE = "genzoo.evaluation.weights"
BUNDLED = {"mnist": "mnist-v1"}  # dataset -> version shipped inside the package


class EvaluatorNet(nn.Module):
    """Conv(32)-pool-Conv(64)-pool-Conv(128)-pool, a 128-unit feature layer, a linear classifier.

    Takes images in [0, 1], shape (B, 1, 28, 28).
    """

    def __init__(self, *, num_classes: int = 10, num_features: int = 128):
        super().__init__()
        self.num_features = num_features  # read by torchmetrics' FID/KID

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(c_out, momentum=0.1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]

        self.body = nn.Sequential(
            *block(1, 32), *block(32, 64), *block(64, 128),  # 28 -> 14 -> 7 -> 3
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, num_features, bias=False),
            nn.BatchNorm1d(num_features, momentum=0.1),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.classifier = nn.Linear(num_features, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> penultimate features (B, num_features)."""
        return self.body(images * 2.0 - 1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.classifier(self.dropout(self.features(images)))


class FeatureExtractor(nn.Module):
    """The evaluator seen as a feature network (for torchmetrics' FID/KID)."""

    def __init__(self, network: EvaluatorNet):
        super().__init__()
        self.network = network
        self.num_features = network.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.features(images)


@dataclass(frozen=True)
class Evaluator:
    version: str  # e.g. "mnist-v1"; part of every reported number's protocol
    dataset: str
    network: EvaluatorNet  # eval mode, no gradients
    test_accuracy: float  # on the dataset's test split, recorded when it was trained
    class_names: tuple[str, ...]

    @torch.no_grad()
    def features_and_probabilities(self, images: torch.Tensor, batch_size: int = 1000):
        """(N, 1, 28, 28) in [0, 1] -> (features (N, F), class probabilities (N, K))."""
        features, probabilities = [], []
        for chunk in images.split(batch_size):
            f = self.network.features(chunk.float())
            features.append(f)
            probabilities.append(torch.softmax(self.network.classifier(f), dim=1))
        return torch.cat(features), torch.cat(probabilities)


def save_evaluator(network: EvaluatorNet, path: Path, *, version: str, dataset: str, test_accuracy: float,
                   class_names: tuple[str, ...]) -> None:
    from safetensors.torch import save_file

    metadata = {
        "version": version,
        "dataset": dataset,
        "test_accuracy": repr(test_accuracy),
        "class_names": json.dumps(list(class_names)),
        "num_features": str(network.num_features),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


def load_evaluator(path: str | Path) -> Evaluator:
    """An evaluator from a ``.safetensors`` file written by ``train_evaluator``."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
        class_names = tuple(json.loads(metadata["class_names"]))
        network = EvaluatorNet(num_classes=len(class_names), num_features=int(metadata["num_features"]))
        network.load_state_dict(state)
    except (OSError, SafetensorError, KeyError, ValueError, RuntimeError) as exc:
        raise GenzooError(f"{path}: not a genzoo evaluator ({exc})") from None
    network.eval().requires_grad_(False)
    return Evaluator(metadata["version"], metadata["dataset"], network, float(metadata["test_accuracy"]),
                     class_names)


def bundled_evaluator(dataset: str) -> Evaluator | None:
    """The evaluator shipped for ``dataset``, or None if genzoo ships none for it."""
    if dataset not in BUNDLED:
        return None
    resource = resources.files(WEIGHTS_PACKAGE) / f"{BUNDLED[dataset]}.safetensors"
    with resources.as_file(resource) as path:
        return load_evaluator(path)
