"""pix2pixHD networks for one-channel images: global generator, local enhancer, multi-scale PatchGAN.

After Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs"
(CVPR 2018), and the layout of their reference code: reflection padding, instance normalisation,
residual blocks at the coarsest scale, and discriminators that return every layer's features for feature
matching.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Generator", "GlobalGenerator", "MultiscaleDiscriminator", "NLayerDiscriminator", "ResnetBlock"]


def _norm(channels: int) -> nn.Module:
    # pix2pixHD's default norm; without affine parameters, as in its reference code.
    return nn.InstanceNorm2d(channels, affine=False)


class ResnetBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection, at constant width.

    Parameters
    ----------
    channels : int
        Feature channels in and out.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` plus the block's residual."""
        return x + self.body(x)


def _upsample(in_channels: int, out_channels: int) -> list[nn.Module]:
    # Nearest-neighbour resize then convolution instead of pix2pixHD's transposed convolution, whose uneven
    # kernel overlap draws a checkerboard (Odena et al., Distill 2016) that shows as peaks in the spectrum.
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.ReflectionPad2d(1),
        nn.Conv2d(in_channels, out_channels, 3),
        _norm(out_channels),
        nn.ReLU(True),
    ]


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator body: 7x7 stem, stride-2 down-sampling, residual blocks, up-sampling.

    It returns ``ngf`` feature channels at the input resolution; :class:`Generator` turns them into an image.

    Parameters
    ----------
    in_channels : int
        Condition channels (label maps, boundary map, noise).
    ngf : int
        Width of the first layer; it doubles at every down-sampling.
    n_downsample : int
        Number of stride-2 convolutions; input sides must be multiples of ``2**n_downsample``.
    n_blocks : int
        Residual blocks at the coarsest scale.
    """

    def __init__(self, in_channels: int, ngf: int = 32, n_downsample: int = 3, n_blocks: int = 4):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            _norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(n_downsample):
            width = ngf * 2**i
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), _norm(2 * width), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 2**n_downsample) for _ in range(n_blocks)]
        for i in reversed(range(n_downsample)):
            layers += _upsample(ngf * 2 ** (i + 1), ngf * 2**i)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, in_channels, H, W) conditions to (B, ngf, H, W) features."""
        return self.layers(x)


class Generator(nn.Module):
    """The pix2pixHD generator: a global generator, optionally wrapped by a local enhancer for 2x resolution.

    With the enhancer, the global generator sees the input down-sampled by two and hands its last features to
    the enhancer, which works at full resolution (pix2pixHD's ``LocalEnhancer`` with one local level).

    Camera noise is pixel-wise independent, which convolutions find hard to draw from a noise input; so, as
    StyleGAN's noise inputs, the generator adds the white-noise input channel to its output, scaled per pixel
    by a learned map (shot noise grows with brightness).

    Parameters
    ----------
    in_channels : int
        Condition channels.
    out_channels : int
        Image channels.
    ngf : int
        Width of the generator's full-resolution features.
    n_downsample : int
        Stride-2 convolutions of the global generator.
    n_blocks : int
        Residual blocks of the global generator.
    local_enhancer : bool
        Add the full-resolution enhancer.
    n_blocks_local : int
        Residual blocks of the enhancer.
    noise_channel : int or None
        Index of the input channel that holds unit white noise to add at the output; None adds none.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        ngf: int = 32,
        n_downsample: int = 3,
        n_blocks: int = 4,
        local_enhancer: bool = False,
        n_blocks_local: int = 3,
        noise_channel: int | None = None,
    ):
        super().__init__()
        self.local_enhancer = local_enhancer
        self.noise_channel = noise_channel
        global_ngf = 2 * ngf if local_enhancer else ngf
        self.global_generator = GlobalGenerator(in_channels, global_ngf, n_downsample, n_blocks)
        if local_enhancer:
            self.local_down = nn.Sequential(
                nn.ReflectionPad2d(3),
                nn.Conv2d(in_channels, ngf, 7),
                _norm(ngf),
                nn.ReLU(True),
                nn.Conv2d(ngf, global_ngf, 3, stride=2, padding=1),
                _norm(global_ngf),
                nn.ReLU(True),
            )
            self.local_up = nn.Sequential(
                *[ResnetBlock(global_ngf) for _ in range(n_blocks_local)], *_upsample(global_ngf, ngf)
            )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        if noise_channel is not None:
            self.noise_scale = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(ngf, out_channels, 3), nn.Softplus()
            )
            # Start with faint noise (softplus(-4) ~ 0.02 of the half range) so early images are not swamped.
            nn.init.constant_(self.noise_scale[1].bias, -4.0)
        self.side_multiple = 2 ** (n_downsample + int(local_enhancer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, in_channels, H, W) conditions to (B, out_channels, H, W) images, about [-1, 1].

        H and W must be multiples of ``side_multiple``.
        """
        if self.local_enhancer:
            coarse = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            features = self.local_up(self.local_down(x) + self.global_generator(coarse))
        else:
            features = self.global_generator(x)
        image = self.head(features)
        if self.noise_channel is not None:
            noise = x[:, self.noise_channel : self.noise_channel + 1]
            image = image + self.noise_scale(features) * noise
        return image


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (4x4 convolutions) that returns the output of every layer.

    Parameters
    ----------
    in_channels : int
        Condition plus image channels.
    ndf : int
        Width of the first layer; it doubles per layer up to ``8 * ndf``.
    n_layers : int
        Stride-2 layers.
    """

    def __init__(self, in_channels: int, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        pad = 2  # ceil((4 - 1) / 2), as pix2pixHD
        layers = [
            nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2, True))
        ]
        width = ndf
        for i in range(1, n_layers + 1):
            previous, width = width, min(ndf * 2**i, 8 * ndf)
            stride = 2 if i < n_layers else 1  # the last hidden layer keeps the resolution
            layers.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 4, stride=stride, padding=pad),
                    _norm(width),
                    nn.LeakyReLU(0.2, True),
                )
            )
        layers.append(nn.Sequential(nn.Conv2d(width, 1, 4, stride=1, padding=pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the features of every layer; the last is the (B, 1, h, w) patch score map."""
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """PatchGAN discriminators at ``n_scales`` resolutions (input halved by average pooling per scale).

    Parameters
    ----------
    in_channels : int
        Condition plus image channels.
    ndf : int
        Width of each discriminator's first layer.
    n_layers : int
        Stride-2 layers of each discriminator.
    n_scales : int
        Number of discriminators (pix2pixHD uses 2 or 3).
    """

    def __init__(self, in_channels: int, ndf: int = 32, n_layers: int = 3, n_scales: int = 2):
        super().__init__()
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(in_channels, ndf, n_layers) for _ in range(n_scales)
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Return, finest scale first, each discriminator's list of layer features."""
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs
