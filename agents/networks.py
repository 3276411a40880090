"""Small networks of our own, usable as SB3 feature extractors.

Their classes are on the safe-unpickling allow-list, so SB3 files that name them
load without running code.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class SmallCNN(BaseFeaturesExtractor):
    """Two conv layers for frames of a few dozen pixels (NatureCNN needs ≥ 36×36).

    Input: ``(N, C, H, W)`` floats already scaled to [0, 1] by SB3's preprocessing.
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 64):
        super().__init__(observation_space, features_dim)
        channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


class DenseReLU(BaseFeaturesExtractor):
    """One dense ReLU layer: the input layer of the zoo's LSTM policies (Bansal et al.),
    before their LSTM, as an SB3 feature extractor (``agents.zoo.to_sb3``)."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128):
        super().__init__(observation_space, features_dim)
        n_input = int(torch.Size(observation_space.shape).numel())
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(n_input, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(observations)
