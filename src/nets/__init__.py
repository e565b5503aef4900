"""Generators and critics as plain ``nn.Module``s."""

from src.nets.dcgan import DCGANCritic, DCGANGenerator
from src.nets.mlp import MLPCritic, MLPGenerator
from src.nets.resnet import ResNetCritic, ResNetGenerator

__all__ = [
    "DCGANCritic",
    "DCGANGenerator",
    "MLPCritic",
    "MLPGenerator",
    "ResNetCritic",
    "ResNetGenerator",
]
