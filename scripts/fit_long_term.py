"""Long-term behaviour fitted from logs: the leave hazard and the return model, with held-out figures.

Fits both on a dataset's earlier 80 % by time and scores them on the later 20 %: fit times, the
leave hazard's held-out log-loss (constant / position-only / full), its coefficients, the logged vs
fitted hazard by rating and by position with 95 % intervals; the return model's coefficients,
concordance (covariate-free vs model), 7/30-day calibration and gap KS. Prints markdown tables.

    python scripts/fit_long_term.py [--dataset ml-100k] [--seed 0] [--max-position 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k", help="a known name or a path, as load_dataset takes it")
    p.add_argument("--seed", type=int, default=0, help="seeds the simulated gaps of the KS")
    p.add_argument("--max-position", type=int, default=20, help="last position of the hazard tables")
    return p.parse_args(argv)


def coefficient_table(names, standardised, raw, errors) -> list[str]:
    lines = ["| feature | per SD | per raw unit | SE (raw) |", "|---|---|---|---|"]
    lines += [f"| {n} | {s:+.3f} | {raw[n]:+.3f} | {errors[n]:.3f} |" for n, s in zip(names, standardised)]
    return lines


def hazard_lines(table) -> list[str]:
    lines = [f"| {table.key} | at risk | leaves | logged [95 % CI] | fitted |", "|---|---|---|---|---|"]
    for row in table.rows():
        lines.append(f"| {row[table.key]:g} | {row['at_risk']} | {row['leaves']} | {row['logged']:.3f} "
                     f"[{row['low']:.3f}, {row['high']:.3f}] | {row['predicted']:.3f} |")
    return lines


def report_leave(train, test, max_position: int) -> None:
    from recsim_env.fit.leave import fit_leave_hazard, validate_leave_hazard

    began = time.perf_counter()
    hazard = fit_leave_hazard(train)
    fit_seconds = time.perf_counter() - began
    result = validate_leave_hazard(hazard, train, test, max_position=max_position)
    meta = hazard.meta
    print(f"## Leave hazard ({train.name} -> {test.name})\n")
    print(f"fit {fit_seconds:.2f} s; {meta['rows']} training items, {meta['events']} session ends, "
          f"{meta['censored']} censored; held-out {result.rows} items, {result.events} ends; "
          f"no-click leave probability {hazard.no_click_probability:.4f} ({meta['no_click_source']})\n")
    print("| hazard | held-out log-loss | training log-loss |\n|---|---|---|")
    for name in ("constant", "position", "full"):
        print(f"| {name} | {result.log_loss[name]:.4f} | {result.train_log_loss[name]:.4f} |")
    _, raw, _, errors = hazard.raw_coefficients()
    print("\n" + "\n".join(coefficient_table(hazard.feature_names, hazard.coefficients, raw, errors)))
    for table in result.tables.values():
        print("\n" + "\n".join(hazard_lines(table)))


def report_returns(train, test, seed: int) -> None:
    from recsim_env.fit.returns import (
        ReturnConfig,
        fit_aft,
        fit_return_model,
        session_records,
        validate_return_model,
    )

    began = time.perf_counter()
    model = fit_return_model(train)
    fit_seconds = time.perf_counter() - began
    null = fit_aft(session_records(train), (), model.distribution, ReturnConfig())
    held_out = session_records(test, history=train)
    result = validate_return_model(model, null, held_out, np.random.default_rng(seed))
    meta = model.meta
    likelihood = ", ".join(f"{k} {v:.4f}" for k, v in meta["heldout_log_likelihood_by_distribution"].items())
    print(f"\n## Return model ({train.name} -> {test.name})\n")
    print(f"fit {fit_seconds:.2f} s (every family); {model.distribution} AFT chosen by {meta['distribution_choice']} "
          f"({likelihood}); scale {model.scale:.3f}; {meta['records']} training records, "
          f"{meta['returns']} returns; held-out {result.records} records, {result.returns} returns\n")
    _, raw, errors = model.raw_coefficients()
    print("\n".join(coefficient_table(model.covariate_names, model.coefficients, raw, errors)))
    print("\n| figure | covariate-free | model |\n|---|---|---|")
    print(f"| concordance | {result.null_concordance:.3f} | {result.concordance:.3f} |")
    for cal in result.calibration:
        print(f"| P(return <= {cal.horizon_days:g} d): predicted vs KM {cal.observed:.3f} | {cal.null_predicted:.3f} "
              f"| {cal.predicted:.3f} |")
    print(f"| gap KS, KM vs mean model CDF | {result.null_ks_marginal:.3f} | {result.ks_marginal:.3f} |")
    print(f"| gap KS, logged vs simulated returns (same follow-up) | {result.null_ks_simulated:.3f} "
          f"| {result.ks_simulated:.3f} |")
    print(f"\nreturn share within follow-up: logged {result.logged_return_share:.3f}, "
          f"simulated {result.simulated_return_share:.3f}")
    for cal in result.calibration:
        quartiles = "; ".join(f"{p:.3f} vs {o:.3f}" for p, o in cal.quartiles)
        print(f"P(return <= {cal.horizon_days:g} d) by quarter of predicted risk (predicted vs KM): {quartiles}")
    report_family_fit(train, np.random.default_rng(seed))


def report_family_fit(train, rng: np.random.Generator) -> None:
    """Each family's draws on the training sessions' own covariates against the training log's Kaplan-Meier
    curve: how well the family's shape fits the logged gaps, apart from any shift in the covariates of the
    sessions a simulator generates (recsim fidelity's "gaps after its own sessions" KS has both)."""
    from recsim_env.evaluation.fidelity_longterm import _simulated_gaps
    from recsim_env.fit.returns import DISTRIBUTIONS, ReturnConfig, covariate_names, fit_aft, session_records

    records = session_records(train)
    names = covariate_names("mean_rating" in records.columns)
    print("\n| family | gap KS, draws on the training sessions vs training KM | P(<= 7 d) draws / KM |\n|---|---|---|")
    for family in DISTRIBUTIONS:
        model = fit_aft(records, names, family, ReturnConfig())
        design = np.repeat(model.design(records), 20, axis=0)
        figures = _simulated_gaps(model.sample_gaps(design, rng), records.gap_days, records.returned)
        print(f"| {family} | {figures['sim_gap_ks_vs_train_km']:.3f} | {figures['sim_return_within_7d']:.3f} / "
              f"{figures['train_km_return_within_7d']:.3f} |")


def main(argv: list[str] | None = None) -> None:
    from recsim_env.fit.datasets import dataset_splits

    args = parse_args(argv)
    train, test = dataset_splits(args.dataset)
    report_leave(train, test, args.max_position)
    report_returns(train, test, args.seed)


if __name__ == "__main__":
    main()
