"""Task functions behind the commands: each takes a composed Hydra config and returns plain results."""
