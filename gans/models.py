"""Generator and critic architectures, registered by name.

Every strategy trains the same networks, so a difference in results comes from the loss alone. By
default no critic normalizes its layers: the gradient penalty is defined per sample, and batch norm
would couple the samples of a batch (WGAN-GP paper, section 4). ``critic_norm`` adds batch norm or
the paper's substitute, layer norm, to the built-in critics (for the experiment that compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from gans.registry import Registry, RegistryError


@dataclass(frozen=True)
class ArchConfig:
    """What a builder needs to make a generator/critic pair for one dataset."""

    sample_shape: tuple[int, ...]  # one data sample: (C, H, W) for images, (2,) for toy points
    width: int  # base channel count (DIM in the WGAN-GP code) or hidden units of the MLP
    latent_dim: int  # size of the generator's Gaussian noise input
    depth: int = 3  # hidden layers of the MLP; unused by the convolutional nets
    # Normalization of the critic's hidden layers after the first (as DCGAN critics have it):
    # "none", "batch" (couples the samples of a batch) or "layer" (per sample).
    critic_norm: str = "none"


CRITIC_NORMS = ("none", "batch", "layer")


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: a builder and the defaults that the papers use with it."""

    build: Callable[[ArchConfig], tuple[nn.Module, nn.Module]]
    default_width: int
    default_latent_dim: int
    accepts: Callable[[tuple[int, ...]], bool]  # which sample shapes it can model
    description: str
    critic_norms: tuple[str, ...] = ("none",)  # the critic normalizations its builder honours

    def resolved_width(self, width: int | None) -> int:
        """``width``, or this architecture's paper default when it is None."""
        return width or self.default_width

    def config(
        self,
        sample_shape: tuple[int, ...],
        width: int | None = None,
        latent_dim: int | None = None,
        depth: int = 3,
        critic_norm: str = "none",
    ) -> ArchConfig:
        """An ``ArchConfig`` with this architecture's defaults where width or latent_dim is None."""
        return ArchConfig(
            tuple(sample_shape),
            self.resolved_width(width),
            latent_dim or self.default_latent_dim,
            depth,
            critic_norm,
        )


def _check_architecture(name: str, entry: object) -> None:
    if not isinstance(entry, Architecture):
        raise RegistryError(f"architecture {name!r} must be a gans.models.Architecture")


ARCHITECTURES: Registry[Architecture] = Registry("architecture", _check_architecture)


def register_architecture(
    name: str, arch: Architecture, provider: str | None = None
) -> Architecture:
    return ARCHITECTURES.register(name, arch, provider)


def build_models(arch_name: str, config: ArchConfig) -> tuple[nn.Module, nn.Module]:
    """Build (generator, critic) for ``config``.

    Raises:
        RegistryError: unknown architecture (the message lists the registered ones).
        ValueError: the architecture cannot model this sample shape, width/depth/latent < 1, or
            it does not offer the critic normalization asked for.
    """
    arch = ARCHITECTURES.get(arch_name)
    for field in ("width", "latent_dim", "depth"):
        if getattr(config, field) < 1:
            raise ValueError(f"{field} must be >= 1, got {getattr(config, field)}")
    if config.critic_norm not in arch.critic_norms:
        raise ValueError(
            f"architecture {arch_name!r} offers critic_norm {', '.join(arch.critic_norms)}, "
            f"not {config.critic_norm!r}"
        )
    if not arch.accepts(config.sample_shape):
        raise ValueError(
            f"architecture {arch_name!r} ({arch.description}) cannot model samples of shape "
            f"{tuple(config.sample_shape)}"
        )
    return arch.build(config)


class _Crop(nn.Module):
    """Crops a feature map to size x size: the WGAN-GP MNIST generator goes 4, 8, 7, 14, 28."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : self.size, : self.size]


def _upsample(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    # 5x5 stride-2 "same" transposed conv: doubles the spatial size, as lib.ops.deconv2d does.
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


def _downsample(c_in: int, c_out: int) -> nn.Conv2d:
    # 5x5 stride-2 "same" conv: 28 -> 14 -> 7 -> 4 and 32 -> 16 -> 8 -> 4.
    return nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)


def _critic_norm(kind: str, channels: int, image: bool) -> list[nn.Module]:
    """The normalization layer (none, or one) for ``channels`` feature maps (``image``) or units.
    Layer norm normalizes each sample over all of its features, with one scale and offset per
    channel, as the WGAN-GP code's layernorm over axes [1, 2, 3] does (GroupNorm with one group is
    exactly that); on units it is ``nn.LayerNorm``."""
    if kind == "batch":
        return [nn.BatchNorm2d(channels) if image else nn.BatchNorm1d(channels)]
    if kind == "layer":
        return [nn.GroupNorm(1, channels) if image else nn.LayerNorm(channels)]
    return []


def _dcgan(config: ArchConfig, crop_to_7: bool, generator_batchnorm: bool):
    channels = config.sample_shape[0]
    w = config.width

    def norm(c: int) -> list[nn.Module]:
        return [nn.BatchNorm2d(c)] if generator_batchnorm else []

    generator = nn.Sequential(
        nn.Linear(config.latent_dim, 4 * 4 * 4 * w),
        *([nn.BatchNorm1d(4 * 4 * 4 * w)] if generator_batchnorm else []),
        nn.ReLU(),
        nn.Unflatten(1, (4 * w, 4, 4)),
        _upsample(4 * w, 2 * w),
        *norm(2 * w),
        nn.ReLU(),
        *([_Crop(7)] if crop_to_7 else []),
        _upsample(2 * w, w),
        *norm(w),
        nn.ReLU(),
        _upsample(w, channels),
        nn.Tanh(),
    )
    norm = config.critic_norm
    critic = nn.Sequential(
        _downsample(channels, w),
        nn.LeakyReLU(0.2),
        _downsample(w, 2 * w),
        *_critic_norm(norm, 2 * w, image=True),
        nn.LeakyReLU(0.2),
        _downsample(2 * w, 4 * w),
        *_critic_norm(norm, 4 * w, image=True),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4 * w, 1),
    )
    return generator, critic


def _tf_dcgan(config: ArchConfig):
    """The TensorFlow DCGAN tutorial's MNIST networks (tensorflow.org/tutorials/generative/dcgan),
    which the TF WGAN with weight clipping trains: batch norm and leaky ReLU (slope 0.3, Keras's
    default) in the generator, 7 -> 7 -> 14 -> 28 with bias-free transposed convolutions; a
    two-convolution critic. The tutorial's dropout in the critic is left out: it would draw from
    the global random stream, which runs do not checkpoint, so resumed runs would differ."""
    channels, w = config.sample_shape[0], config.width

    def up(c_in: int, c_out: int, stride: int) -> nn.ConvTranspose2d:
        return nn.ConvTranspose2d(
            c_in, c_out, 5, stride, padding=2, output_padding=stride - 1, bias=False
        )

    generator = nn.Sequential(
        nn.Linear(config.latent_dim, 7 * 7 * 4 * w, bias=False),
        nn.BatchNorm1d(7 * 7 * 4 * w),
        nn.LeakyReLU(0.3),
        nn.Unflatten(1, (4 * w, 7, 7)),
        up(4 * w, 2 * w, 1),
        nn.BatchNorm2d(2 * w),
        nn.LeakyReLU(0.3),
        up(2 * w, w, 2),
        nn.BatchNorm2d(w),
        nn.LeakyReLU(0.3),
        up(w, channels, 2),
        nn.Tanh(),
    )
    critic = nn.Sequential(
        _downsample(channels, w),
        nn.LeakyReLU(0.3),
        _downsample(w, 2 * w),
        *_critic_norm(config.critic_norm, 2 * w, image=True),
        nn.LeakyReLU(0.3),
        nn.Flatten(),
        nn.Linear(7 * 7 * 2 * w, 1),
    )
    return generator, critic


def _mlp(n_in: int, n_out: int, width: int, depth: int, norm: str = "none") -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(n_in if i == 0 else width, width))
        if i > 0:
            layers += _critic_norm(norm, width, image=False)
        layers.append(nn.ReLU())
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _build_mlp(config: ArchConfig):
    (dim,) = config.sample_shape
    return (
        _mlp(config.latent_dim, dim, config.width, config.depth),
        _mlp(dim, 1, config.width, config.depth, config.critic_norm),
    )


def _image_shape(channels: set[int], size: int) -> Callable[[tuple[int, ...]], bool]:
    return lambda shape: len(shape) == 3 and shape[0] in channels and shape[1:] == (size, size)


register_architecture(
    "dcgan28",
    Architecture(
        # The WGAN-GP paper's MNIST networks (gan_mnist.py), tanh output for data in [-1, 1].
        build=lambda c: _dcgan(c, crop_to_7=True, generator_batchnorm=False),
        default_width=64,  # DIM = 64 in gan_mnist.py
        default_latent_dim=128,  # 128-d Gaussian noise in gan_mnist.py
        accepts=_image_shape({1, 3}, 28),
        description="WGAN-GP paper's MNIST conv nets, 28x28",
        critic_norms=CRITIC_NORMS,
    ),
)
register_architecture(
    "dcgan32",
    Architecture(
        # The WGAN-GP paper's CIFAR-10 DCGAN (gan_cifar.py): batch norm in the generator only.
        build=lambda c: _dcgan(c, crop_to_7=False, generator_batchnorm=True),
        default_width=128,  # DIM = 128 in gan_cifar.py
        default_latent_dim=128,
        accepts=_image_shape({1, 3}, 32),
        description="WGAN-GP paper's CIFAR-10 DCGAN, 32x32",
        critic_norms=CRITIC_NORMS,
    ),
)
register_architecture(
    "dcgan28-tf",
    Architecture(
        build=_tf_dcgan,
        default_width=64,  # 256, 128 and 64 generator channels in the tutorial
        default_latent_dim=100,  # noise_dim = 100 in the tutorial
        accepts=_image_shape({1, 3}, 28),
        description="TensorFlow DCGAN tutorial's MNIST nets, batch norm in the generator, 28x28",
        critic_norms=CRITIC_NORMS,
    ),
)
register_architecture(
    "mlp",
    Architecture(
        # gan_toy.py: 3 ReLU layers of 512 units in both nets, 2-d noise for the generator.
        build=_build_mlp,
        default_width=512,
        default_latent_dim=2,
        accepts=lambda shape: len(shape) == 1,
        description="ReLU MLP for flat samples such as toy 2-D points",
        critic_norms=CRITIC_NORMS,
    ),
)
