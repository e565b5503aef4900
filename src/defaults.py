"""The default run, ``python -m src.train``: class-conditional WGAN-GP on scikit-learn's digits.

:class:`~src.cli.WGANCLI` sets these as the parser's defaults; every config states only what differs from them
(``python -m src.train --print_config`` prints them all).
"""

from __future__ import annotations

from typing import Any

# The default digits run departs from the paper's recipe where measured runs showed it trains faster and more
# precisely on a CPU (BENCHMARKS.md): 16 px digits, class-conditional nets (a class embedding joins the noise; a
# projection critic), and the values of the Optuna search maximising min(precision, recall) (bench/tune_digits.py):
# latent size 32, n_critic 2, Adam with betas (0, 0.9) and lr 2.3e-3 (generator) / 5.9e-4 (critic), EMA 0.99,
# lambda 10. configs/digits_uncond.yaml is the same run without the labels.
# The paper's configs (toy, mnist, cifar10, text) state the paper's nets, optimizer and n_critic.
DIGITS_BETAS = [0.0, 0.9]
DIGITS_GENERATOR_ADAM = {"class_path": "torch.optim.Adam", "init_args": {"lr": 2.3e-3, "betas": DIGITS_BETAS}}
DIGITS_CRITIC_ADAM = {"class_path": "torch.optim.Adam", "init_args": {"lr": 5.9e-4, "betas": DIGITS_BETAS}}

TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": "runs", "name": "digits"},
    },
    "log_every_n_steps": 10,  # the default digits epoch has 22 batches
    "max_epochs": 1000,
}

# The default run measures FID/IS/KID offline with the digits classifier (`--quality`) and keeps the best-FID
# checkpoint (`--best`): 800 samples against 800 of the 1455 training digits every 10 epochs, beside the floor at
# the same sizes (5 disjoint draws of 800 + 800 of the 1797 real digits: src/evaluation/real_floor.py). Larger
# counts would leave no disjoint real digits for that floor. `--best` is a second ModelCheckpoint: with a monitor,
# Lightning 2.6 writes last.ckpt only when a top-k checkpoint is saved, so `--checkpoint` (no monitor) keeps
# last.ckpt current for resuming.
DIGITS_QUALITY: dict[str, Any] = {
    "class_path": "src.evaluation.ImageQuality",
    "init_args": {
        "feature_extractor": "digits",
        "num_samples": 800,
        "num_real": 800,
        "floor_draws": 5,
        "every_n_epochs": 10,
        "kid_subsets": 50,
        "kid_subset_size": 500,
    },
}
BEST_FID: dict[str, Any] = {
    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
    "init_args": {"monitor": "val/fid", "mode": "min", "filename": "best-fid-{epoch}-{step}"},
}

DEFAULT_RUN: dict[str, Any] = {
    "model": {
        "class_path": "src.models.WGANGP",
        "init_args": {
            "generator": {
                "class_path": "src.nets.ConditionalDCGANGenerator",
                "init_args": {"dim": 32, "latent_dim": 32, "num_classes": 10},
            },
            "critic": {
                "class_path": "src.nets.ProjectionDCGANCritic",
                "init_args": {"dim": 32, "num_classes": 10},
            },
            "generator_optimizer": DIGITS_GENERATOR_ADAM,
            "critic_optimizer": DIGITS_CRITIC_ADAM,
            "n_critic": 2,
            "ema_decay": 0.99,  # samples and metrics from the averaged generator
            "max_generator_steps": 1500,  # the default run finishes in minutes on a CPU
            "num_fixed_samples": 100,  # 10 rows of 10: one row per class
        },
    },
    "data": {"class_path": "src.data.DigitsDataModule", "init_args": {"image_size": 16}},
    "regularizer": {
        "class_path": "src.regularizers.GradientPenalty"
    },  # lambda 10: the search's 9.15, rounded
    "checkpoint.save_last": True,
    "quality": DIGITS_QUALITY,
    "best": BEST_FID,
}
