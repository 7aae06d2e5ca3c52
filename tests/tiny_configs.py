"""One tiny config per registered model: small enough that a training step takes milliseconds.

Adding a model to the registry means adding a line here; the contract tests fail until you do.
"""

TINY = {
    "ae": {"hidden_dims": "32", "latent_dim": "4"},
    "dae": {"conv_channels": "4,8", "latent_dim": "4"},
    "vae": {"conv_channels": "4,8", "hidden_dims": "16", "latent_dim": "2"},
    "cvae": {"conv_channels": "4,8", "hidden_dims": "16", "latent_dim": "2"},
}


def tiny_overrides(model: str) -> list[str]:
    return [f"model.{key}={value}" for key, value in TINY[model].items()]
