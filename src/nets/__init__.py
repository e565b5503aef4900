"""Generators and critics as plain ``nn.Module``s."""

from src.nets.acgan import ACGANResNetCritic
from src.nets.conditional import (
    ConditionalDCGANGenerator,
    ConditionalResNetGenerator,
    ProjectionDCGANCritic,
    ProjectionResNetCritic,
)
from src.nets.dcgan import DCGANCritic, DCGANGenerator
from src.nets.language import LanguageCritic, LanguageGenerator
from src.nets.mlp import MLPCritic, MLPGenerator
from src.nets.resnet import ResNetCritic, ResNetGenerator
from src.nets.superres import PatchCritic, SRResNetGenerator

__all__ = [
    "ACGANResNetCritic",
    "ConditionalDCGANGenerator",
    "ConditionalResNetGenerator",
    "DCGANCritic",
    "DCGANGenerator",
    "LanguageCritic",
    "LanguageGenerator",
    "MLPCritic",
    "MLPGenerator",
    "PatchCritic",
    "ProjectionDCGANCritic",
    "ProjectionResNetCritic",
    "ResNetCritic",
    "ResNetGenerator",
    "SRResNetGenerator",
]
