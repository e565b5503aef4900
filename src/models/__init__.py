"""Lightning modules: the alternating WGAN-GP and its simultaneous (competitive optimizer) variant."""

from src.models.competitive import CompetitiveWGAN
from src.models.superres import SuperResolutionWGAN
from src.models.wgan_gp import WGANGP

__all__ = ["CompetitiveWGAN", "SuperResolutionWGAN", "WGANGP"]
