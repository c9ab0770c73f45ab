"""Tests for affsr.config: every settings dataclass refuses an out-of-range value itself, naming the key,
so a bad value can never be built (params, a run's settings, a checkpoint's)."""

from __future__ import annotations

import pytest

from affsr.config.data import DatasetConfig, OperatorConfig
from affsr.config.networks import DensityConfig, DiscriminatorConfig, GeneratorConfig
from affsr.config.study import EvaluateConfig, ResourceConfig, ToyConfig
from affsr.config.training import MethodConfig, TrainConfig

BAD = [
    (OperatorConfig, {"sigma": 0.0}, "sigma: must be > 0"),
    (OperatorConfig, {"scale": 0}, "scale: must be ≥ 1"),
    (DatasetConfig, {"source": "s", "n_test": 0}, "n_test: must be ≥ 1"),
    (DatasetConfig, {"source": "s", "steps_scale": -1.0}, "steps_scale: must be > 0"),
    (DatasetConfig, {"source": "s", "crop": (1, 2)}, "crop: [1, 2] must be [], [size] or [top, left, size]"),
    (GeneratorConfig, {"width": 0}, "width: must be ≥ 1"),
    (GeneratorConfig, {"blocks": -1}, "blocks: must be ≥ 0"),
    (GeneratorConfig, {"noise": -2}, "noise: must be ≥ 0"),
    (DiscriminatorConfig, {"widths": ()}, "widths: must be a non-empty list"),
    (DiscriminatorConfig, {"widths": (8, 0)}, "widths: must be a non-empty list of sizes ≥ 1"),
    (DensityConfig, {"components": 0}, "components: must be ≥ 1"),
    (TrainConfig, {"lr": 0.0}, "lr: must be > 0"),
    (TrainConfig, {"lr": -1.0}, "lr: must be > 0"),
    (TrainConfig, {"beta1": 1.5}, "beta1: must be in [0, 1)"),
    (TrainConfig, {"beta2": 1.0}, "beta2: must be in [0, 1)"),
    (TrainConfig, {"steps": -1}, "steps: must be ≥ 0"),
    (TrainConfig, {"batch_size": 0}, "batch_size: must be > 0"),
    (TrainConfig, {"ema": 1.0}, "ema: must be in [0, 1)"),
    (TrainConfig, {"device": "gpu"}, "device: 'gpu' is not one of: auto, cpu, cuda"),
    (TrainConfig, {"lr_scale": {"discriminator": 0.0}}, "lr_scale.discriminator: must be > 0"),
    (MethodConfig, {"objective": "gan", "constraint": "hard"}, "constraint: 'hard' is not one of"),
    (MethodConfig, {"objective": "gan", "split": "test"}, "split: 'test' is not one of: train, val"),
    (MethodConfig, {"objective": "gan", "consistency_weight": -10.0}, "consistency_weight: must be ≥ 0"),
    (EvaluateConfig, {"c2st_steps": 0}, "c2st_steps: must be ≥ 1"),
    (EvaluateConfig, {"references": ("bicubc",)}, "references: 'bicubc' is not one of: bicubic, pinv"),
    (ResourceConfig, {"gpu": -1}, "gpu: must be ≥ 0"),
    (ToyConfig, {"restarts": 0}, "restarts: must be ≥ 1"),
    (ToyConfig, {"consistency_weight": -1.0}, "consistency_weight: must be ≥ 0"),
]


@pytest.mark.parametrize("cls, values, message", BAD, ids=[f"{c.__name__}-{next(iter(v))}" for c, v, _ in BAD])
def test_a_bad_value_is_refused_naming_its_key(cls, values, message):
    with pytest.raises(ValueError) as info:
        cls(**values)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("cls", [OperatorConfig, GeneratorConfig, DiscriminatorConfig, DensityConfig, TrainConfig,
                                 EvaluateConfig, ResourceConfig, ToyConfig])
def test_the_defaults_are_valid(cls):
    cls()


def test_edge_values_that_are_allowed():
    TrainConfig(steps=0)  # affinit: the untrained projected net
    GeneratorConfig(blocks=0)
    DensityConfig(features=0)  # plain softmax gating
    MethodConfig(objective="gan", consistency_weight=0.0)
