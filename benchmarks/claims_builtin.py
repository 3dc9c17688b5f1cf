"""The built-in claims: what the WGAN and WGAN-GP papers (and the write-ups that repeat them) say
about these losses, each with its experiment at two sizes and its decision rule.

Budgets, seeds and thresholds are written here before any result is seen, and never changed to
move a verdict. The ``cpu`` sizes follow the papers' toy and MNIST settings (gan_toy.py,
gan_mnist.py) with budgets cut to fit a laptop; ``paper`` sizes are the published settings.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

import gans
from benchmarks.claim import MANN_WHITNEY, Claim, Experiment, Groups, Rule, register_claim
from benchmarks.report_figures import Drawing, styled
from gans.metrics import FID, MODES_COVERED, W1

SEEDS = [0, 1, 2, 3, 4]  # 5 seeds: with 3 vs 3 no rank test can reach p < 0.05
WGAN_PAPER = "Arjovsky, Chintala and Bottou 2017, Wasserstein GAN"
WGAN_GP_PAPER = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs"


def _toy_table(width: int, gen_iters: int, eval_every: int) -> dict:
    return {
        "arch": "mlp",
        "width": width,
        "batch_size": 256,  # gan_toy.py
        "gen_iters": gen_iters,
        "eval_every": eval_every,
    }


def _toy_suite(width, gen_iters, eval_every, datasets, strategies, overrides=None) -> dict:
    table = _toy_table(width, gen_iters, eval_every)
    overrides = dict(overrides or {})
    if "wgan-gp" in strategies:
        overrides["wgan-gp"] = {"penalty_weight": 0.1}  # gan_toy.py's lambda for toy data
    return {
        "seeds": SEEDS,
        "strategies": strategies,
        "eval": {"intermediate_samples": 1000, "final_samples": 2000},
        "hyperparameters": overrides,
        "datasets": {name: dict(table) for name in datasets},
    }


ALL = ["gan", "wgan", "wgan-gp"]
# cpu: 3,000 generator iterations at width 64 (the quick suite's toy setting), evaluated every 100
# for 30 points per run; paper: gan_toy.py's width 512 and 100,000 iterations.
TOY = Experiment(
    "toy-strategies",
    cpu=_toy_suite(64, 3000, 100, ["8gaussians", "25gaussians"], ALL),
    paper=_toy_suite(512, 100_000, 1000, ["8gaussians", "25gaussians"], ALL),
)
ADAM = {"wgan": {"optimizer": "adam", "lr": 1e-4, "betas": [0.5, 0.9]}}  # the WGAN-GP paper's Adam
TOY_WGAN_ADAM = Experiment(
    "toy-wgan-adam",
    cpu=_toy_suite(64, 3000, 100, ["8gaussians"], ["wgan"], ADAM),
    paper=_toy_suite(512, 100_000, 1000, ["8gaussians"], ["wgan"], ADAM),
)


def _mnist_suite(width, gen_iters, eval_every, samples, lr_factor) -> dict:
    # The papers' learning rates, times lr_factor (3 at cpu size, as the quick suite: digits
    # appear within a few hundred iterations; 1 at paper size).
    paper_lr = {"gan": 2e-4, "wgan": 5e-5, "wgan-gp": 1e-4}
    return {
        "seeds": SEEDS,
        "strategies": ALL,
        "eval": {"intermediate_samples": samples, "final_samples": samples},
        "datasets": {
            "mnist-5k": {
                "arch": "dcgan28",
                "width": width,
                "batch_size": 50,  # gan_mnist.py
                "gen_iters": gen_iters,
                "eval_every": eval_every,
                "hyperparameters": {s: {"lr": lr * lr_factor} for s, lr in paper_lr.items()},
            }
        },
    }


# cpu: width 16 and 400 iterations, an FID every 25 on 500 samples (16 points per run).
MNIST = Experiment(
    "mnist-strategies",
    cpu=_mnist_suite(16, 400, 25, 500, 3),
    paper=_mnist_suite(64, 200_000, 2000, 1000, 1),
)


def _builtin(claim: Claim) -> None:
    register_claim(claim, provider="benchmarks")


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished and diverged runs: both are results (failed runs are errors, listed apart)."""
    return runs[runs["status"].isin([gans.DONE, gans.DIVERGED])]


def _figure(name: str, title: str, caption: str, frame: pd.DataFrame, x: str, y: str, hue=None):
    import matplotlib.pyplot as plt
    import seaborn as sns

    style, context = styled()
    with style, context:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        sns.boxplot(frame, x=x, y=y, hue=hue, ax=ax, fill=False, showfliers=False)
        sns.stripplot(frame, x=x, y=y, hue=hue, ax=ax, dodge=hue is not None, legend=False)
        ax.set_xlabel("")
    return Drawing(name, title, caption, fig)


# --- gan-mode-collapse ---------------------------------------------------------------------


def _modes(tables, size) -> Groups:
    runs = _finished(tables[TOY.name]["runs"])
    runs = runs[runs["strategy"].isin(["gan", "wgan-gp"])].copy()
    n_modes = runs["dataset"].map(lambda d: len(gans.data.mixture_modes(d)[0]))
    # A diverged generator covers no mode worth counting: 0, the worst value.
    covered = runs[MODES_COVERED].where(runs["status"] == gans.DONE, 0.0)
    runs["fraction of modes covered"] = covered / n_modes
    values = {s: runs.loc[runs["strategy"] == s, "fraction of modes covered"] for s in ALL}
    notes = []
    for (dataset, strategy), rows in runs.groupby(["dataset", "strategy"], sort=False):
        counts = ", ".join(str(int(c)) for c in covered[rows.index])
        of = int(n_modes[rows.index[0]])
        notes.append(
            f"{dataset} {strategy}: modes covered per seed {counts} of {of}; "
            f"final W1 mean {rows[W1].mean():.3g}"
        )
    figure = _figure(
        "gan-mode-collapse",
        "Modes covered at the end of training",
        "Fraction of the mixture's modes covered per seed (a mode counts when it holds at least a "
        "quarter of its fair share of samples within 3 standard deviations); diverged seeds "
        "count 0.",
        runs,
        "dataset",
        "fraction of modes covered",
        hue="strategy",
    )
    return Groups(
        "wgan-gp",
        values["wgan-gp"].to_numpy(),
        "gan",
        values["gan"].to_numpy(),
        "fraction of modes covered per seed, 8gaussians and 25gaussians pooled",
        tuple(notes),
        figure,
    )


_builtin(
    Claim(
        id="gan-mode-collapse",
        statement="On mixtures of Gaussians, the GAN covers fewer modes than WGAN-GP at equal "
        "generator iterations.",
        source=f"{WGAN_GP_PAPER}, Sec. 4 and Fig. 2 (toy datasets); {WGAN_PAPER}, Sec. 4.3",
        repeated_by="WGAN tutorials on the 8-Gaussians toy problem ('no mode collapse')",
        experiments=(TOY,),
        measure=_modes,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
        could_change="A longer budget might let the GAN reach the modes it misses early, or "
        "collapse further; other learning rates change the GAN's behaviour most.",
    )
)


# --- adam-breaks-clipping ------------------------------------------------------------------


def _adam(tables, size) -> Groups:
    groups, notes = {}, []
    for label, experiment in (("Adam", TOY_WGAN_ADAM), ("RMSProp", TOY)):
        runs = _finished(tables[experiment.name]["runs"])
        runs = runs[(runs["strategy"] == "wgan") & (runs["dataset"] == "8gaussians")]
        # A diverged run ranks worse than every finished one: W1 = inf.
        w1 = runs[W1].where(runs["status"] == gans.DONE, math.inf).to_numpy(dtype=float)
        groups[label] = w1
        curves = tables[experiment.name]["curves"]
        curves = curves[curves["run_id"].isin(runs["run_id"])]
        half = curves.groupby("run_id")["gen_iter"].transform("max") / 2
        late = curves[curves["gen_iter"] > half]
        variance = late.groupby("run_id")["critic_loss"].var()
        diverged = int((runs["status"] == gans.DIVERGED).sum())
        notes.append(
            f"wgan with {label}: {diverged} of {len(runs)} seeds diverged; final W1 per seed "
            + ", ".join("diverged" if math.isinf(v) else f"{v:.3g}" for v in w1)
            + f"; variance of the critic loss over the second half of training, median over "
            f"seeds {variance.median():.3g}"
        )
    frame = pd.DataFrame(
        [{"optimizer": k, "final W1": v} for k, vs in groups.items() for v in vs if v < math.inf]
    )
    figure = _figure(
        "adam-breaks-clipping",
        "Weight-clipped WGAN with Adam and with RMSProp",
        "Final W1 per seed on 8gaussians (lower is better); diverged seeds are not drawn and are "
        "counted in the notes (they rank worst in the test).",
        frame,
        "optimizer",
        "final W1",
    )
    return Groups(
        "wgan with Adam",
        groups["Adam"],
        "wgan with RMSProp",
        groups["RMSProp"],
        "final W1 per seed on 8gaussians (diverged: worst)",
        tuple(notes),
        figure,
    )


_builtin(
    Claim(
        id="adam-breaks-clipping",
        statement="Weight-clipped WGAN trained with a momentum optimizer (Adam) is unstable and "
        "ends worse than with RMSProp.",
        source=f"{WGAN_PAPER}, Sec. 3 (why RMSProp) and Sec. 4.3",
        repeated_by="WGAN write-ups: 'use RMSProp, not Adam, with weight clipping'",
        experiments=(TOY, TOY_WGAN_ADAM),
        measure=_adam,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
        could_change="The paper saw the instability on images with larger networks; toy data "
        "and a short budget may not reach it.",
    )
)


# --- critic-loss-tracks-quality ------------------------------------------------------------


def _tracking(tables, size) -> Groups:
    """Per run, Spearman's rho between the critic's divergence estimate (minus the critic loss,
    averaged over the iterations since the previous evaluation) and the distance to the data at
    each evaluation (W1 on 8gaussians, FID on mnist-5k). For WGANs minus the critic loss is the
    Wasserstein estimate; for the GAN it is an increasing function of the JS estimate."""
    rows = []
    for experiment, dataset, metric in ((TOY, "8gaussians", W1), (MNIST, "mnist-5k", FID)):
        t = tables[experiment.name]
        runs = _finished(t["runs"])
        runs = runs[runs["dataset"] == dataset]
        evals = t["evals"]
        evals = evals[(evals["stage"] == "intermediate") & (evals["metric"] == metric)]
        for run in runs.to_dict("records"):
            curve = t["curves"][t["curves"]["run_id"] == run["run_id"]]
            points = evals[evals["run_id"] == run["run_id"]].sort_values("gen_iter")
            points = points[points["gen_iter"] > 0]
            # Window i: the iterations after evaluation i - 1, up to and including evaluation i.
            window = np.searchsorted(points["gen_iter"].to_numpy(), curve["gen_iter"].to_numpy())
            by_window = (-curve["critic_loss"]).groupby(window).mean()
            estimate = by_window.reindex(range(len(points))).to_numpy()
            quality = points["value"].to_numpy()
            ok = np.isfinite(estimate) & np.isfinite(quality)
            # Fewer than 3 points (a run that diverged early): no tracking shown, rho = 0.
            rho = stats.spearmanr(estimate[ok], quality[ok]).statistic if ok.sum() >= 3 else 0.0
            rows.append(
                {
                    "dataset": dataset,
                    "strategy": run["strategy"],
                    "rho": 0.0 if math.isnan(rho) else float(rho),
                    "points": int(ok.sum()),
                }
            )
    frame = pd.DataFrame(rows)
    notes = tuple(
        f"{d} {s}: median rho {g['rho'].median():.2f} over {len(g)} runs "
        f"({int(g['points'].median())} evaluation points each)"
        for (d, s), g in frame.groupby(["dataset", "strategy"], sort=False)
    )
    figure = _figure(
        "critic-loss-tracks-quality",
        "Does the critic's estimate track sample quality?",
        "Spearman's rho per run between minus the critic loss (averaged since the previous "
        "evaluation) and the distance to the data (W1 on 8gaussians, FID on mnist-5k) over the "
        "evaluation points; +1: the estimate falls exactly when quality improves.",
        frame,
        "dataset",
        "rho",
        hue="strategy",
    )
    wgans = frame["strategy"].isin(["wgan", "wgan-gp"])
    return Groups(
        "wgan and wgan-gp",
        frame.loc[wgans, "rho"].to_numpy(),
        "gan",
        frame.loc[frame["strategy"] == "gan", "rho"].to_numpy(),
        "Spearman rho per run, 8gaussians and mnist-5k pooled",
        notes,
        figure,
    )


_builtin(
    Claim(
        id="critic-loss-tracks-quality",
        statement="Over training the WGAN critic's Wasserstein estimate falls as sample quality "
        "improves; the GAN discriminator's loss does not track quality.",
        source=f"{WGAN_PAPER}, Sec. 4.2 and Figs. 3-4",
        repeated_by="WGAN tutorials: 'the loss of the critic relates to the quality of "
        "generated images'",
        experiments=(TOY, MNIST),
        measure=_tracking,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5),
        could_change="Early in training every loss moves with quality; a longer budget, where "
        "the GAN's discriminator saturates, is where the paper saw the difference.",
    )
)
