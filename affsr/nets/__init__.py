"""The networks: the SR generator f_θ and the model that applies the constraint, the discriminator,
the denoiser and the density model (their sizes: params.yaml, :mod:`affsr.config.networks`).
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "Generator": "generator",
    "SRModel": "sr_model",
    "Discriminator": "discriminator",
    "Denoiser": "denoiser",
    "DensityModel": "density",
    "dequantize": "density",
})
