"""New cells from a trained model: latent samplers, writing one generated cell, the sharded run."""
