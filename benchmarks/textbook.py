"""The textbook GAN training loop, the baseline ``python -m benchmarks.speed --compare`` measures
the shared trainer against.

It is written the way popular public implementations write it (the PyTorch DCGAN example and the
usual WGAN and WGAN-GP ports), with the same networks and the same strategy pieces as the trainer,
so the two differ only in how the loop is built:

- the data is a torchvision-style dataset: uint8 images turned into tensors one sample at a time
  by ``transforms.ToTensor`` and ``transforms.Normalize`` (as ``torchvision.datasets.MNIST`` does),
  or toy points turned into tensors one at a time, behind a shuffling ``DataLoader``, and each
  batch is copied to the device;
- the optimizers are the unfused, per-parameter ones (``foreach=False``);
- the critic is called on the real batch and on the fake batch separately;
- the generator step also computes the critic's parameter gradients, which it throws away;
- every loss is read with ``.item()`` for logging, which waits for the device each step.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

import gans


class TextbookImages(torch.utils.data.Dataset):
    """Images kept as uint8 arrays, converted per sample like ``torchvision.datasets.MNIST``."""

    def __init__(self, images: torch.Tensor):
        # images: N x C x H x W in [-1, 1], as gans datasets hold them
        pixels = ((images.cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        self.images = pixels.permute(0, 2, 3, 1).squeeze(-1).numpy()  # N x H x W (x C)
        channels = images.shape[1]
        self.transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.5,) * channels, (0.5,) * channels)]
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), 0


class TextbookPoints(torch.utils.data.Dataset):
    """Toy points kept as a NumPy array, converted per sample."""

    def __init__(self, points: torch.Tensor):
        self.points = points.cpu().numpy().astype(np.float32)

    def __len__(self):
        return len(self.points)

    def __getitem__(self, index):
        return torch.from_numpy(self.points[index]), 0


class TextbookLoop:
    """One training run of ``config``, written as the textbook loop (see the module docstring).

    Args:
        config: the run, as for ``gans.Trainer`` (strategy, dataset, arch, width, batch, seed).
        data: the loaded dataset (its train split is converted to the textbook form).
        device: where the models live and each batch is copied to.
    """

    def __init__(self, config: gans.TrainConfig, data: gans.Dataset, device: torch.device):
        self.device = torch.device(device)
        self.strategy = gans.make_strategy(config.strategy, config.hyperparameters)
        self.hparams = self.strategy.hparams
        arch = gans.ARCHITECTURES.get(config.arch).config(
            data.sample_shape, config.width, config.latent_dim, config.depth
        )
        self.latent_dim = arch.latent_dim
        torch.manual_seed(config.seed)
        generator, critic = gans.build_models(config.arch, arch)
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        self.opt_g = self._optimizer(self.generator)
        self.opt_c = self._optimizer(self.critic)
        dataset = TextbookImages(data.train) if data.kind == "image" else TextbookPoints(data.train)
        self.loader = DataLoader(
            dataset, batch_size=config.batch_size, shuffle=True, drop_last=True
        )
        self.batches = iter(self.loader)
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        self.batch_size = config.batch_size
        self.critic_losses: list[float] = []
        self.generator_losses: list[float] = []

    def _optimizer(self, module: torch.nn.Module) -> torch.optim.Optimizer:
        hp = self.hparams
        if hp.optimizer == "adam":
            return torch.optim.Adam(module.parameters(), lr=hp.lr, betas=hp.betas, foreach=False)
        if hp.optimizer == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=hp.lr, foreach=False)
        raise ValueError(f"the textbook loop knows adam and rmsprop, not {hp.optimizer!r}")

    def _real_batch(self) -> torch.Tensor:
        try:
            images, _ = next(self.batches)
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            images, _ = next(self.batches)
        return images.to(self.device)

    def gen_iter(self) -> None:
        """n_critic critic steps, then one generator step."""
        loss_fn, penalty, constraint = (
            self.strategy.loss,
            self.strategy.penalty,
            self.strategy.constraint,
        )
        for _ in range(self.hparams.n_critic):
            real = self._real_batch()
            noise = torch.randn(self.batch_size, self.latent_dim, device=self.device)
            fake = self.generator(noise).detach()
            loss = loss_fn.critic_loss(self.critic(real).view(-1), self.critic(fake).view(-1))
            if penalty is not None:
                loss = loss + penalty(self.critic, real, fake, self.rng).value
            self.critic.zero_grad()
            loss.backward()
            self.opt_c.step()
            if constraint is not None:
                constraint(list(self.critic.parameters()))
            self.critic_losses.append(loss.item())
        noise = torch.randn(self.batch_size, self.latent_dim, device=self.device)
        loss = loss_fn.generator_loss(self.critic(self.generator(noise)).view(-1))
        self.generator.zero_grad()
        loss.backward()
        self.opt_g.step()
        self.generator_losses.append(loss.item())
