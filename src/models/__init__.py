"""Lightning modules."""

from src.models.wgan_gp import WGANGP

__all__ = ["WGANGP"]
