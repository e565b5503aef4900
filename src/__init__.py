"""WGAN-GP Lightning template."""
