"""Verdicts are computed from the metrics: each claim flips when its measurement flips."""

import pandas as pd
import pytest

from affsr.report.claims import NOT_MEASURED, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, claims_markdown, claims_table


def frame(values: dict) -> pd.DataFrame:
    """{(dataset, method, metric): value} → tidy metrics."""
    return pd.DataFrame([{"dataset": d, "method": m, "metric": k, "value": v} for (d, m, k), v in values.items()])


def verdicts(values: dict, claim: str, measurement: str = "") -> list[str]:
    table = claims_table(frame(values))
    rows = table[(table["claim"] == claim) & table["measurement"].str.contains(measurement, regex=False)]
    return rows["verdict"].tolist()


def test_affmse_psnr_claim_follows_the_numbers():
    good = {("grass", "affmse", "psnr"): 19.3, ("grass", "mse", "psnr"): 19.1}
    bad = {("grass", "affmse", "psnr"): 18.9, ("grass", "mse", "psnr"): 19.1}
    assert verdicts(good, "AffMSE ≥ MSE", "psnr") == [REPRODUCED]
    assert verdicts(bad, "AffMSE ≥ MSE", "psnr") == [NOT_REPRODUCED]
    assert verdicts(good, "AffMSE ≥ MSE", "ssim") == [NOT_MEASURED]  # no ssim given


def test_projection_exact_uses_the_worst_projected_method():
    values = {("faces", "affmse", "lr_mse"): 1e-14, ("faces", "affgan", "lr_mse"): 1e-15,
              ("faces", "mse", "lr_mse"): 1e-3}
    assert verdicts(values, "the projection is exact") == [REPRODUCED]
    values[("faces", "affgan", "lr_mse")] = 1e-6
    assert verdicts(values, "the projection is exact") == [NOT_REPRODUCED]


def test_sharpness_claim_needs_affgan_below_both_mse_models():
    values = {("grass", "affgan", "spectrum_distance"): 0.2, ("grass", "mse", "spectrum_distance"): 0.5,
              ("grass", "affmse", "spectrum_distance"): 0.4}
    assert verdicts(values, "AffGAN sharper than MSE/AffMSE") == [REPRODUCED]
    values[("grass", "affmse", "spectrum_distance")] = 0.1
    assert verdicts(values, "AffGAN sharper than MSE/AffMSE") == [NOT_REPRODUCED]


@pytest.mark.parametrize("affgan, mse, expected", [(0.99, 1.0, NOT_TESTABLE), (0.7, 0.98, REPRODUCED),
                                                   (0.97, 0.9, NOT_REPRODUCED)])
def test_realism_claim_is_not_testable_when_the_classifier_catches_everything(affgan, mse, expected):
    values = {("grass", "affgan", "c2st"): affgan, ("grass", "mse", "c2st"): mse,
              ("grass", "affmse", "c2st"): mse, ("grass", "hr", "c2st"): 0.5}
    assert verdicts(values, "AffGAN as plausible as real data") == [expected]


def test_toy_values_within_tolerance_and_order():
    values = {("toy", "affgan", "cross_entropy"): 4.0, ("toy", "softgan", "cross_entropy"): 4.3,
              ("toy", "mse", "cross_entropy"): 8.0, ("toy", "mae", "cross_entropy"): 4.5,
              ("toy", "posterior_median", "cross_entropy"): 4.4}
    table = claims_table(frame(values))
    value_rows = table[table["claim"] == "toy Table 1 value"].set_index("measurement")["verdict"]
    assert value_rows["H[q, p_Y] of AffGAN (nats)"] == REPRODUCED  # |4.0 − 4.1| / 4.1 < 15 %
    assert value_rows["H[q, p_Y] of MSE (nats)"] == REPRODUCED  # 8.0 vs 9.10: 12 %
    assert value_rows["H[q, p_Y] of MAE (nats)"] == REPRODUCED  # far from 6.30 but at the posterior median
    assert value_rows["H[q, p_Y] of AffDG (nats)"] == NOT_MEASURED
    order = table[table["claim"] == "toy Table 1 order"].set_index("measurement")["verdict"]
    assert order["H: AffGAN < SoftGAN"] == REPRODUCED
    assert order["H: AffGAN < MAE"] == REPRODUCED
    values[("toy", "affgan", "cross_entropy")] = 4.6
    order = claims_table(frame(values)).set_index("measurement")["verdict"]
    assert order["H: AffGAN < SoftGAN"] == NOT_REPRODUCED
    assert order["H: AffGAN < MAE"] == NOT_REPRODUCED


def test_markdown_tallies_every_verdict():
    values = {("grass", "affmse", "psnr"): 19.3, ("grass", "mse", "psnr"): 19.1}
    text = claims_markdown(claims_table(frame(values)))
    assert "1 reproduced" in text
    assert text.count("\n| ") == len(claims_table(frame(values))) + 1  # the header, then one line per row


def test_a_toy_order_within_the_restart_spread_does_not_count():
    values = {("toy", "affgan", "cross_entropy"): 4.0, ("toy", "softgan", "cross_entropy"): 4.4,
              ("toy", "affgan", "cross_entropy_sem"): 0.1, ("toy", "softgan", "cross_entropy_sem"): 0.1}
    order = claims_table(frame(values)).set_index("measurement")["verdict"]
    assert order["H: AffGAN < SoftGAN"] == REPRODUCED  # 0.4 > 2 · √2 · 0.1 = 0.28
    values[("toy", "softgan", "cross_entropy_sem")] = 0.2
    order = claims_table(frame(values)).set_index("measurement")["verdict"]
    assert order["H: AffGAN < SoftGAN"] == NOT_REPRODUCED  # 0.4 < 2 · √(0.1² + 0.2²) = 0.45


def test_a_c2st_difference_within_its_standard_error_is_not_testable():
    values = {("faces", "affgan", "c2st"): 0.73, ("faces", "mse", "c2st"): 0.85, ("faces", "affmse", "c2st"): 0.92,
              ("faces", "affgan", "c2st_se"): 0.09, ("faces", "mse", "c2st_se"): 0.07}
    assert verdicts(values, "AffGAN as plausible as real data") == [NOT_TESTABLE]  # 0.12 < 2 · 0.11
    values.update({("faces", "affgan", "c2st_se"): 0.02, ("faces", "mse", "c2st_se"): 0.02})
    assert verdicts(values, "AffGAN as plausible as real data") == [REPRODUCED]


@pytest.mark.parametrize("seed1, expected", [(0.86, REPRODUCED), (0.97, NOT_TESTABLE), (0.80, REPRODUCED)])
def test_realism_claim_over_two_seeds_needs_the_margin_beyond_their_spread(seed1, expected):
    """affgan_seed1 (the same run with seed_offset 1) joins affgan: the mean is compared, and a margin
    within the spread over seeds, or one seed on the wrong side, is not testable."""
    values = {("grass", "affgan", "c2st"): 0.88, ("grass", "affgan_seed1", "c2st"): seed1,
              ("grass", "mse", "c2st"): 0.99, ("grass", "affmse", "c2st"): 0.995,
              ("grass", "affgan", "c2st_se"): 0.01, ("grass", "mse", "c2st_se"): 0.005}
    table = claims_table(frame(values))
    row = table[table["claim"] == "AffGAN as plausible as real data"].iloc[0]
    assert row["verdict"] == expected
    assert "2 seeds, spread" in row["margin"]
    assert row["ours"].startswith(f"{(0.88 + seed1) / 2:.3g}")


def test_sharpness_claim_over_two_seeds_fails_when_one_seed_is_blurrier():
    values = {("grass", "affgan", "spectrum_distance"): 0.2, ("grass", "affgan_seed1", "spectrum_distance"): 0.45,
              ("grass", "mse", "spectrum_distance"): 0.5, ("grass", "affmse", "spectrum_distance"): 0.4}
    assert verdicts(values, "AffGAN sharper than MSE/AffMSE") == [NOT_REPRODUCED]
    values[("grass", "affgan_seed1", "spectrum_distance")] = 0.25
    assert verdicts(values, "AffGAN sharper than MSE/AffMSE") == [REPRODUCED]


def test_claims_across_tiers_put_each_tiers_verdicts_side_by_side():
    """One row per claim and data set; each tier's verdicts with their margins, · where it measured nothing."""
    from affsr.report.claims import across_tiers

    demo = claims_table(frame({("grass", "affmse", "psnr"): 19.3, ("grass", "mse", "psnr"): 19.1,
                               ("grass", "affmse", "ssim"): 0.50, ("grass", "mse", "ssim"): 0.55}))
    cpu = claims_table(frame({("grass", "affmse", "psnr"): 19.0, ("grass", "mse", "psnr"): 19.1}))
    table = across_tiers({"demo": demo, "cpu": cpu}).set_index(["claim", "data set"])
    row = table.loc[("AffMSE ≥ MSE", "grass")]
    assert row["demo"] == "✓ +0.2 dB; ✗ -0.05"
    assert row["cpu"].startswith("✗ -0.1 dB")
    assert table.loc[("the projection is exact", "grass"), "cpu"] == "·"


def test_claims_markdown_shows_the_other_tiers_first():
    demo = claims_table(frame({("grass", "affmse", "psnr"): 19.3, ("grass", "mse", "psnr"): 19.1}))
    text = claims_markdown(demo, "demo", {"cpu": demo})
    assert text.index("## Across tiers") < text.index("## demo")
    assert "demo: 1 reproduced" in text and "cpu: 1 reproduced" in text
    assert "| claim | paper | data set | demo | cpu |" in text
    assert "## Across tiers" not in claims_markdown(demo, "demo")
