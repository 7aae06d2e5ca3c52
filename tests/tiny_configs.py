"""One tiny config per registered model: small enough that a training step takes milliseconds.

Adding a model to the registry means adding a line here; the contract tests fail until you do.
"""

TINY = {
    "ae": {"hidden_dims": "32", "latent_dim": "4"},
    "dae": {"conv_channels": "4,8", "latent_dim": "4"},
    "vae": {"conv_channels": "4,8", "hidden_dims": "16", "latent_dim": "2"},
    "cvae": {"conv_channels": "4,8", "hidden_dims": "16", "latent_dim": "2"},
    "gan": {"generator_dims": "16", "discriminator_dims": "16", "latent_dim": "4"},
    "cgan": {"generator_dims": "16", "discriminator_dims": "16", "latent_dim": "4"},
    "dcgan": {"generator_channels": "4", "discriminator_channels": "4", "latent_dim": "4"},
    "context-encoder": {"channels": "4,8", "bottleneck": "8", "discriminator_channels": "4"},
    "rbm": {"hidden_units": "8", "gibbs_steps": "5", "persistent_chains": "10", "learning_rate": "0.001"},
    "dbn": {"hidden_layers": "8,6", "updates_per_layer": "2", "gibbs_steps": "5", "learning_rate": "0.001"},
    "dbm": {"hidden_layers": "8,6", "pretrain_updates": "1", "gibbs_steps": "5", "persistent_chains": "10",
            "learning_rate": "0.001"},
    "draw": {"steps": "3", "encoder_size": "8", "decoder_size": "8", "latent_dim": "2"},
    "lapgan": {"coarse_dims": "16", "residual_channels": "4", "latent_dim": "4"},
}


def tiny_overrides(model: str) -> list[str]:
    return [f"model.{key}={value}" for key, value in TINY[model].items()]
