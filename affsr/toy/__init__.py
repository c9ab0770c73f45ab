"""The 2-D toy MAP experiment (paper §5.1, Table 1, Figure 1; paper.md §4).

HR "images" are points y ∈ R² of a noisy Swiss roll, the "LR image" is the scalar x = (y₁ + y₂)/2,
i.e. A = [½ ½] and A⁺ = [1 1]ᵀ. Every solution set {y : Ay = x} is a line y = A⁺x + t·v with
v = [1, −1]/√2 (the null space of A), and the posterior p(y | x) is the prior's slice along that line.
Ground truth is a Gaussian KDE (bandwidth 0.2) of 50,000 samples of the *noise-free* roll; the exact
MAP is found by brute force along each line; methods are scored by the cross-entropy
H[q_θ, p_Y] = −E_x log p_KDE(ŷ(x)) in **nats** and by the consistency ℓ_MSE(x, Aŷ) = mean (x − Aŷ)²,
on the same fresh draws x ~ p_X for every model. Beside the paper's rows we score the Bayes-optimal
estimators of the MSE and MAE losses, the posterior mean and median (brute force like the MAP): they
tell a loss whose optimum lies off the roll (the mean) from a net that has not reached its optimum.

Every method trains through the shared loop (:func:`affsr.training.loop.fit`) and the same objective classes,
options and constraints as the image study: the toy trains the methods of params.yaml (``toy.skip``
leaves some out), with its own loop settings and per-objective overrides (:class:`affsr.config.ToyConfig`);
only the model, the networks and the batches are 2-D here. With the default params.yaml:

======== ===================== ============ =================================================
method   objective             constraint   notes
======== ===================== ============ =================================================
mse      pixel (l2)            none         paired (x, y)
mae      pixel (l1)            none         paired (x, y)
affgan   gan                   projected    instance noise 1 → 0.2; 20 D steps per G step;
                                            unpaired y as the "real" samples
softgan  gan                   soft         + soft penalty weight·|x − Aŷ| (``consistency_weight``)
affdg    denoiser_guided       projected    guided by frozen DAE snapshots (σ 0.5 → 0.25)
softdg   denoiser_guided       soft         + soft penalty (the same ``consistency_weight``)
======== ===================== ============ =================================================

AffDG/SoftDG: each restart first trains ONE denoiser (objective ``dae``, σ annealed in segments) through
the same loop; its snapshots become frozen :class:`~affsr.methods.base.Guide` s (label σ) for both.

Restarts train side by side as an ensemble in one run of the loop (:mod:`affsr.toy.study`).

What the paper leaves open (paper.md §4 "[not stated]": optimiser, steps, batch, activations, instance
noise, soft-penalty weight, number of DAE snapshots) is a setting of params.yaml's ``toy:`` section, its
measurements in docs/toy.md; fixed choices: generator ReLU with input x/3 (standardised), discriminator LeakyReLU(0.2), denoiser
SiLU (a smooth score field; with ReLU 2–3 of 10 AffDG restarts ran off along the null space, pushed by
the small-σ snapshots' extrapolated far field — see also β₂ and ``noise_input`` in docs/toy.md).

How the KDE is evaluated, fast and exactly enough: :mod:`affsr.toy.truth`.

Modules: :mod:`~affsr.toy.roll` (the data and A), :mod:`~affsr.toy.nets` (ensembles of 2-D networks),
:mod:`~affsr.toy.truth` (the KDE ground truth, MAP and Bayes estimators), :mod:`~affsr.toy.study`
(training the params methods and scoring them), :mod:`~affsr.toy.paper_table` (Table 1 beside the paper's).
"""

from affsr.lazy_exports import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "ToySettings": "study",
    "run_toy_study": "study",
    "RollKDE": "truth",
    "sample_roll": "roll",
    "ToyOperator": "roll",
    "PAPER_TABLE1": "paper_table",
})
