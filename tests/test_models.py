import pytest
import torch
from torch import nn

from gans.models import ARCHITECTURES, ArchConfig, build_models

SHAPES = {"dcgan28": (1, 28, 28), "dcgan28-tf": (1, 28, 28), "dcgan32": (3, 32, 32), "mlp": (2,)}


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("dcgan28", (1, 28, 28)),
        ("dcgan28", (3, 28, 28)),
        ("dcgan28-tf", (1, 28, 28)),
        ("dcgan32", (3, 32, 32)),
        ("mlp", (2,)),
    ],
    ids=["dcgan28-gray", "dcgan28-rgb", "dcgan28-tf", "dcgan32", "mlp"],
)
def test_generator_makes_data_shaped_samples_and_critic_one_score_each(arch, shape):
    g, d = build_models(arch, ArchConfig(shape, width=8, latent_dim=16))
    x = g(torch.randn(5, 16))
    assert x.shape == (5, *shape)
    assert d(x).shape == (5, 1)
    if arch.startswith("dcgan"):
        assert x.abs().max() <= 1  # tanh output, the range of the scaled images


@pytest.mark.parametrize("arch", list(SHAPES))
def test_no_critic_uses_batch_norm_by_default(arch):
    _, critic = build_models(arch, ARCHITECTURES.get(arch).config(SHAPES[arch]))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())


def test_dcgan28_matches_the_wgan_gp_mnist_networks():
    g, d = build_models("dcgan28", ArchConfig((1, 28, 28), width=64, latent_dim=128))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 64, (5, 5), (2, 2)),
        (64, 128, (5, 5), (2, 2)),
        (128, 256, (5, 5), (2, 2)),
    ]
    assert [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 3
    assert g[0].out_features == 4 * 4 * 4 * 64
    deconvs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in deconvs] == [
        (256, 128, (5, 5)),
        (128, 64, (5, 5)),
        (64, 1, (5, 5)),
    ]
    # Parameter counts of gan_mnist.py at DIM = 64 (weights + biases, no batch norm).
    assert sum(p.numel() for p in g.parameters()) == 128 * 4096 + 4096 + (256 * 128 * 25 + 128) + (
        128 * 64 * 25 + 64
    ) + (64 * 1 * 25 + 1)
    assert sum(p.numel() for p in d.parameters()) == (1 * 64 * 25 + 64) + (64 * 128 * 25 + 128) + (
        128 * 256 * 25 + 256
    ) + (4096 + 1)


def test_dcgan28_tf_matches_the_tensorflow_dcgan_tutorial_networks():
    g, d = build_models("dcgan28-tf", ARCHITECTURES.get("dcgan28-tf").config((1, 28, 28)))
    assert g[0].in_features == 100  # the tutorial's noise_dim
    assert [type(m) for m in g][:3] == [nn.Linear, nn.BatchNorm1d, nn.LeakyReLU]
    deconvs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride, c.bias) for c in deconvs] == [
        (256, 128, (1, 1), None),
        (128, 64, (2, 2), None),
        (64, 1, (2, 2), None),
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g) == 2  # batch norm in the generator
    assert [m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)] == [0.3] * 3
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
        (1, 64, (2, 2)),
        (64, 128, (2, 2)),
    ]
    assert isinstance(d[-1], nn.Linear) and d[-1].in_features == 7 * 7 * 128  # a linear output
    # The tutorial's generator: 2,330,944 parameters with Keras's batch-norm moving statistics
    # (which torch keeps as buffers, not parameters): 1,254,400 + 819,200 + 204,800 + 1,600
    # weights and 2 x (12,544 + 128 + 64) batch-norm scales and offsets.
    assert sum(p.numel() for p in g.parameters()) == 2_305_472


@pytest.mark.parametrize("depth", [1, 3, 12])
def test_mlp_width_and_depth(depth):
    g, d = build_models("mlp", ArchConfig((2,), width=32, latent_dim=2, depth=depth))
    for net in (g, d):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        assert len(linears) == depth + 1
        assert all(m.out_features == 32 for m in linears[:-1])


def test_architecture_refuses_shapes_it_cannot_model():
    with pytest.raises(
        ValueError, match=r"'dcgan32' .* cannot model samples of shape \(1, 28, 28\)"
    ):
        build_models("dcgan32", ArchConfig((1, 28, 28), width=8, latent_dim=8))
    with pytest.raises(ValueError, match="width must be >= 1, got 0"):
        build_models("mlp", ArchConfig((2,), width=0, latent_dim=2))


@pytest.mark.parametrize("arch", list(SHAPES))
def test_batch_norm_in_the_critic_couples_the_samples_and_layer_norm_does_not(arch):
    shape = SHAPES[arch]
    x = torch.randn(6, *shape)
    scores = {}
    for norm in ("none", "batch", "layer"):
        torch.manual_seed(0)
        _, critic = build_models(arch, ArchConfig(shape, 8, 16, critic_norm=norm))
        # A sample's score within the batch, and alone with two other samples.
        scores[norm] = (critic(x)[:2], critic(torch.cat([x[:2], x[4:5]]))[:2])
    for norm in ("none", "layer"):
        torch.testing.assert_close(*scores[norm])  # per sample: the penalty's assumption
    assert not torch.allclose(*scores["batch"], atol=1e-4)


def test_batch_norm_statistics_update_in_training_mode_only():
    _, critic = build_models("dcgan28", ArchConfig((1, 28, 28), 8, 16, critic_norm="batch"))
    norms = [m for m in critic.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 2  # after the second and third convolutions, as DCGAN critics have it
    before = norms[0].running_mean.clone()
    critic.eval()
    critic(torch.randn(4, 1, 28, 28))
    torch.testing.assert_close(norms[0].running_mean, before)
    critic.train()
    critic(torch.randn(4, 1, 28, 28))
    assert (norms[0].running_mean - before).abs().max() > 1e-3
    assert norms[0].num_batches_tracked == 1


@pytest.mark.parametrize("arch", ["dcgan28", "mlp"])
def test_layer_norm_normalizes_each_sample_over_all_its_features_like_nn_layernorm(arch):
    shape = SHAPES[arch]
    _, critic = build_models(arch, ArchConfig(shape, 8, 16, critic_norm="layer"))
    kinds = (nn.GroupNorm, nn.LayerNorm)
    norms = [m for m in critic.modules() if isinstance(m, kinds)]
    assert len(norms) == 2
    features = []
    hook = norms[0].register_forward_hook(lambda m, args, out: features.append((args[0], out)))
    critic(torch.randn(5, *shape))
    hook.remove()
    inputs, out = features[0]
    # At initialization (scale 1, offset 0) it is nn.LayerNorm over every feature of a sample.
    reference = nn.LayerNorm(inputs.shape[1:], elementwise_affine=False)(inputs)
    torch.testing.assert_close(out, reference)


def test_an_architecture_refuses_a_critic_norm_it_does_not_offer():
    with pytest.raises(ValueError, match="offers critic_norm none, batch, layer, not 'group'"):
        build_models("mlp", ArchConfig((2,), 8, 2, critic_norm="group"))
