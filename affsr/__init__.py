"""affsr: amortised MAP inference for image super-resolution (Sønderby et al., ICLR 2017).

Modules, in the order data flows through them:
``config`` (params.yaml → typed settings) → ``operators`` (A, Aᵀ, exact A⁺, AffineProjection)
→ ``data`` (HR patches and their LR images) → ``nets`` / ``methods`` (objectives) → ``train`` (the one
loop) → ``checkpoint`` → ``metrics`` / ``evaluate`` → ``plots`` / ``report``; ``cli`` exposes each step.
"""

__version__ = "0.1.0"
