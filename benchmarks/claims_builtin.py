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
from benchmarks.claim import (
    BUILTIN_ALPHA,
    MANN_WHITNEY,
    Claim,
    Experiment,
    Groups,
    Rule,
    box_figure,
    register_claim,
)
from benchmarks.report_figures import Drawing, styled
from gans.metrics import CRITIC_W1_FRACTION, FID, MODES_COVERED, W1

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


def _mnist_suite(
    width, gen_iters, eval_every, samples, lr_factor, heldout_every, strategies=ALL, **table
) -> dict:
    """mnist-5k (or ``table["dataset"]``, e.g. a size subset) with the dcgan28 nets; further
    ``table`` keys (critic_norm) go to the dataset's table."""
    # The papers' learning rates, times lr_factor (3 at cpu size, as the quick suite: digits
    # appear within a few hundred iterations; 1 at paper size).
    paper_lr = {"gan": 2e-4, "wgan": 5e-5, "wgan-gp": 1e-4}
    dataset = table.pop("dataset", "mnist-5k")
    return {
        "seeds": SEEDS,
        "strategies": strategies,
        "eval": {"intermediate_samples": samples, "final_samples": samples},
        "datasets": {
            dataset: {
                "arch": "dcgan28",
                "width": width,
                "batch_size": 50,  # gan_mnist.py
                "gen_iters": gen_iters,
                "eval_every": eval_every,
                # The critic loss on held-out digits (critic-overfits-small-data); the held-out
                # check draws from its own stream and changes no training number.
                "heldout_every": heldout_every,
                "hyperparameters": {
                    s: {"lr": lr * lr_factor} for s, lr in paper_lr.items() if s in strategies
                },
                **table,
            }
        },
    }


# cpu: width 16 and 400 iterations, an FID every 25 on 500 samples (16 points per run), the
# held-out critic loss every 20; paper: gan_mnist.py's width 64 and 200,000 iterations, the
# held-out loss every 100 as the paper logs it.
MNIST_CPU = (16, 400, 25, 500, 3, 20)
MNIST_PAPER = (64, 200_000, 2000, 1000, 1, 100)
MNIST = Experiment(
    "mnist-strategies", cpu=_mnist_suite(*MNIST_CPU), paper=_mnist_suite(*MNIST_PAPER)
)


def _builtin(claim: Claim) -> None:
    register_claim(claim, provider="benchmarks")


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished and diverged runs: both are results (failed runs are errors, listed apart)."""
    return runs[runs["status"].isin([gans.DONE, gans.DIVERGED])]


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
    figure = box_figure(
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
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
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
    figure = box_figure(
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
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        datasets=("8gaussians",),
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
    figure = box_figure(
        "critic-loss-tracks-quality",
        "The critic's estimate against sample quality over training",
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
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        datasets=("8gaussians", "mnist-5k"),
        could_change="Early in training every loss moves with quality; a longer budget, where "
        "the GAN's discriminator saturates, is where the paper saw the difference.",
    )
)


# --- clipping-gradients-explode-or-vanish --------------------------------------------------

CLIP_VALUES = (0.1, 0.01, 0.001)  # the WGAN-GP paper's Fig. 1b


def _deep_critic_suite(width: int, gen_iters: int, strategy: str, overrides: dict) -> dict:
    """The Swiss roll with 12 hidden ReLU layers (the MLP's depth is that of both networks here;
    the paper names only the critic's), without batch norm."""
    return {
        "seeds": SEEDS,
        "strategies": [strategy],
        "eval": {"intermediate_samples": 1000, "final_samples": 2000},
        "hyperparameters": {strategy: overrides},
        "datasets": {
            "swissroll": {
                "arch": "mlp",
                "width": width,
                "depth": 12,
                "batch_size": 256,
                "gen_iters": gen_iters,
                "eval_every": gen_iters // 4,
                "layer_grads_every": gen_iters // 20,  # 20 records per run
            }
        },
    }


PENALTY = "gradient penalty"


def _clipping_and_penalty(prefix: str, suite, cpu: tuple, paper: tuple) -> dict[str, Experiment]:
    """One experiment per clip value (wgan) and one with the gradient penalty (wgan-gp, the
    paper's lambda 10), by label; ``suite(*size, strategy, overrides)`` makes each document."""
    configs = {
        f"clip {c:g}": (f"{prefix}-clip-{str(c).replace('.', 'p')}", "wgan", {"clip_value": c})
        for c in CLIP_VALUES
    }
    configs[PENALTY] = (f"{prefix}-gp", "wgan-gp", {})
    return {
        label: Experiment(name, cpu=suite(*cpu, strategy, o), paper=suite(*paper, strategy, o))
        for label, (name, strategy, o) in configs.items()
    }


# cpu: width 64 and 1,000 iterations; paper: gan_toy.py's width 512 and 100,000 iterations.
DEEP_CRITIC = _clipping_and_penalty("deep-critic", _deep_critic_suite, (64, 1000), (512, 100_000))


def _layer_profile(curves: pd.DataFrame, run_id: str) -> np.ndarray | None:
    """log10 of each layer's gradient norm, averaged over the second half of a run's records;
    None when the run recorded none (it diverged before the first)."""
    columns = sorted(
        (c for c in curves.columns if c.startswith(gans.LAYER_GRAD_NORM)),
        key=lambda c: int(c.removeprefix(gans.LAYER_GRAD_NORM)),
    )
    rows = curves.loc[curves["run_id"] == run_id, columns].dropna(how="all")
    if rows.empty:
        return None
    late = rows.iloc[len(rows) // 2 :]
    return np.log10(late.to_numpy(dtype=float)).mean(axis=0)


def _gradient_slopes(tables, size) -> Groups:
    """Per run, the slope of log10 |dL/dW_layer| against the layer (decades per layer), as a
    magnitude: exponential growth and decay alike are far from 0."""
    rows, profiles = [], []
    for label, experiment in DEEP_CRITIC.items():
        t = tables[experiment.name]
        for run in _finished(t["runs"]).to_dict("records"):
            profile = _layer_profile(t["curves"], run["run_id"])
            if profile is None or not np.isfinite(profile).all():
                slope = math.inf  # diverged before any record, or a norm of 0 or inf: extreme
            else:
                slope = abs(np.polyfit(np.arange(1, len(profile) + 1), profile, 1)[0])
                profiles += [
                    {"config": label, "layer": i + 1, "log10 gradient norm": v}
                    for i, v in enumerate(profile)
                ]
            rows.append({"config": label, "slope": slope, "status": run["status"]})
    frame = pd.DataFrame(rows)
    notes = tuple(
        f"{config}: |slope| per seed "
        + ", ".join(f"{v:.3g}" for v in g["slope"])
        + " decades per layer (inf: a layer's gradient norm was exactly 0, or not finite); "
        + f"{int((g['status'] == gans.DIVERGED).sum())} diverged"
        for config, g in frame.groupby("config", sort=False)
    )
    import matplotlib.pyplot as plt
    import seaborn as sns

    style, context = styled()
    with style, context:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        if profiles:
            sns.lineplot(
                pd.DataFrame(profiles),
                x="layer",
                y="log10 gradient norm",
                hue="config",
                estimator="median",
                errorbar=("pi", 100),
                marker="o",
                ax=ax,
            )
        ax.set_xlabel("critic layer (1: input)")
        if profiles:
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1))
    figure = Drawing(
        "clipping-gradients-explode-or-vanish",
        "Gradient norms across the layers of a 12-layer critic",
        "log10 of the norm of the critic loss's gradient with respect to each layer's weight, "
        "averaged over the second half of training; median over seeds, band from the lowest to "
        "the highest seed. The claim: with weight clipping, norms that grow or shrink "
        "geometrically across the layers; with the gradient penalty, flat."
        + "".join(
            f" Not drawn: {config}, a layer's gradient norm 0 (or not finite) in every seed."
            for config, g in frame.groupby("config", sort=False)
            if not np.isfinite(g["slope"]).any()
        ),
        fig,
    )
    clipped = frame["config"] != PENALTY
    return Groups(
        "weight clipping (c = 0.1, 0.01, 0.001)",
        frame.loc[clipped, "slope"].to_numpy(),
        PENALTY,
        frame.loc[~clipped, "slope"].to_numpy(),
        "|slope| of log10 gradient norm against layer, decades per layer, per run",
        notes,
        figure,
    )


_builtin(
    Claim(
        id="clipping-gradients-explode-or-vanish",
        statement="In a deep critic without batch norm, weight clipping makes gradient norms "
        "grow or decay exponentially across the layers; the gradient penalty keeps them stable.",
        source=f"{WGAN_GP_PAPER}, Fig. 1b and Sec. 3",
        repeated_by="WGAN-GP summaries: 'clipping leads to exploding or vanishing gradients'",
        experiments=tuple(DEEP_CRITIC.values()),
        measure=_gradient_slopes,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        could_change="The profile is taken after 1,000 generator iterations at width 64; the "
        "paper does not say when it measured, and a wider critic changes the scale per layer.",
    )
)


# --- clipping-limits-capacity --------------------------------------------------------------

TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll")  # the WGAN-GP paper's Fig. 1a


def _critic_only_suite(width: int, gen_iters: int, strategy: str, overrides: dict) -> dict:
    """Only the critic trains, against the untrained generator's points (the paper holds its
    generator at the real data plus Gaussian noise), n_critic steps per iteration as usual."""
    table = {
        "arch": "mlp",
        "width": width,
        "batch_size": 256,
        "gen_iters": gen_iters,
        "eval_every": gen_iters,  # the fit of the trained critic is what counts
        "freeze_generator": True,
    }
    return {
        "seeds": SEEDS,
        "strategies": [strategy],
        "eval": {"intermediate_samples": 2000, "final_samples": 2000},
        "hyperparameters": {strategy: overrides},
        "datasets": {name: dict(table) for name in TOY_DATASETS},
    }


# cpu: width 64, 500 iterations (2,500 critic steps); paper: width 512, 20,000 iterations
# (100,000 critic steps, "trained to optimality").
CRITIC_ONLY = _clipping_and_penalty("critic-only", _critic_only_suite, (64, 500), (512, 20_000))


def _critic_fit(tables, size) -> Groups:
    rows = []
    for label, experiment in CRITIC_ONLY.items():
        runs = _finished(tables[experiment.name]["runs"])
        # A diverged critic fits nothing: the worst value.
        fraction = runs[CRITIC_W1_FRACTION].where(runs["status"] == gans.DONE, -math.inf)
        rows += [
            {"config": label, "dataset": d, "fraction of W1": f, "status": s}
            for d, f, s in zip(runs["dataset"], fraction, runs["status"], strict=True)
        ]
    frame = pd.DataFrame(rows)
    notes = tuple(
        f"{dataset} {config}: median fraction {g['fraction of W1'].median():.3g} "
        f"({int((g['status'] == gans.DIVERGED).sum())} of {len(g)} seeds diverged)"
        for (dataset, config), g in frame.groupby(["dataset", "config"], sort=False)
    )
    figure = box_figure(
        "clipping-limits-capacity",
        "How much of W1 each critic captures",
        "Per seed, the critic's estimate E f(real) - E f(fake) divided by its Lipschitz constant "
        "(the largest input-gradient norm over real, generated and interpolated points), as a "
        "share of exact W1, after training the critic alone against a fixed generator. 1: an "
        "optimal critic.",
        frame[np.isfinite(frame["fraction of W1"])],
        "dataset",
        "fraction of W1",
        hue="config",
    )
    gp = frame["config"] == PENALTY
    return Groups(
        PENALTY,
        frame.loc[gp, "fraction of W1"].to_numpy(),
        "weight clipping (c = 0.1, 0.01, 0.001)",
        frame.loc[~gp, "fraction of W1"].to_numpy(),
        "fraction of exact W1 the Lipschitz-normalised critic captures, per run, "
        + ", ".join(TOY_DATASETS)
        + " pooled",
        notes,
        figure,
    )


_builtin(
    Claim(
        id="clipping-limits-capacity",
        statement="A weight-clipped critic learns a much simpler function than a "
        "gradient-penalised one: normalised by its Lipschitz constant, it captures less of the "
        "Wasserstein distance.",
        source=f"{WGAN_GP_PAPER}, Sec. 3 and Fig. 1a",
        repeated_by="WGAN-GP summaries: 'clipping biases the critic towards simple functions'",
        experiments=tuple(CRITIC_ONLY.values()),
        measure=_critic_fit,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        could_change="The Lipschitz constant is estimated from gradients at the points looked "
        "at (a lower bound); 2,500 critic steps may be short of optimality for either critic.",
    )
)
