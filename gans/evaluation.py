"""One entry point for evaluating a trainer's generator, whatever the kind of data."""

from __future__ import annotations

import torch

from gans.metrics import MetricRow
from gans.metrics_image import evaluate_images
from gans.metrics_toy import evaluate_points
from gans.trainer import Trainer


def evaluate(trainer: Trainer, n_fake: int, eval_seed: int = 0, **image_options) -> list[MetricRow]:
    """Metrics of ``trainer``'s current generator against the held-out (test) split.

    Image data get torch-fidelity's FID/IS/KID/precision/recall (``image_options`` go to
    ``evaluate_images``: extractor, metrics, n_real, cache_dir, inception_weights,
    classifier_data); toy points get exact W1 and, for Gaussian mixtures, mode metrics, against
    ``n_fake`` test points. Samples are drawn with ``eval_seed``, apart from the training streams.
    """
    rng = torch.Generator(trainer.device).manual_seed(eval_seed)
    data = trainer.data
    if data.kind == "image":
        return evaluate_images(
            lambda n: trainer.generate(n, rng),
            data,
            n_fake=n_fake,
            eval_seed=eval_seed,
            device=trainer.device,
            **image_options,
        )
    # Toy test splits are i.i.d. draws, so their first rows are a fair sample.
    return evaluate_points(trainer.generate(n_fake, rng), data.test[:n_fake], data.name, eval_seed)
