"""The built-in claims about how training goes: sample quality at equal iterations, wall-clock
time to quality, batch norm in the critic, robustness to hyperparameters and critic overfitting on
small data. Like ``claims_builtin`` (whose experiments they share where they can), every budget,
seed list, threshold and rule here is written before any result is seen.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

import gans
from benchmarks import report_answer as answers
from benchmarks import report_stats as rs
from benchmarks.claim import (
    BUILTIN_ALPHA,
    MANN_WHITNEY,
    Claim,
    Experiment,
    Groups,
    Rule,
    box_figure,
)
from benchmarks.claims_builtin import (
    ALL,
    MNIST,
    MNIST_CPU,
    MNIST_PAPER,
    TOY,
    WGAN_GP_PAPER,
    WGAN_PAPER,
    _builtin,
    _finished,
    _mnist_suite,
)
from benchmarks.report_figures import Drawing, styled
from benchmarks.store import INTERMEDIATE
from gans.metrics import FID, W1


def _references(tables, dataset: str) -> pd.DataFrame:
    """The untrained generators' and real data's values on ``dataset``, from one experiment."""
    evals, floors = tables["evals"], tables["references"]
    return rs.references(evals[evals["dataset"] == dataset], floors[floors["dataset"] == dataset])


def _final(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's final ``metric``; a diverged run's is inf (it ranks worst)."""
    return runs[metric].where(runs["status"] == gans.DONE, math.inf).astype(float)


# --- gp-beats-clipping ---------------------------------------------------------------------


def _gp_against_clipping(tables, size) -> Groups:
    """Per run, the final distance to the data divided by the median of that dataset's wgan and
    wgan-gp runs: a scale-free value, so 8gaussians, 25gaussians (W1) and mnist-5k (FID) pool."""
    rows = []
    for experiment, datasets, metric in (
        (TOY, ("8gaussians", "25gaussians"), W1),
        (MNIST, ("mnist-5k",), FID),
    ):
        runs = _finished(tables[experiment.name]["runs"])
        runs = runs[runs["strategy"].isin(["wgan", "wgan-gp"])]
        for dataset in datasets:
            mine = runs[runs["dataset"] == dataset]
            final = _final(mine, metric)
            median = np.median(final)
            for strategy, value in zip(mine["strategy"], final, strict=True):
                rows.append(
                    {
                        "dataset": dataset,
                        "strategy": strategy,
                        "metric": rs.metric_name(metric),
                        "final": value,
                        "relative distance": value / median,
                    }
                )
    frame = pd.DataFrame(rows)
    notes = tuple(
        f"{dataset} {strategy}: final {g['metric'].iloc[0]} per seed "
        + ", ".join("diverged" if math.isinf(v) else rs.fmt(v) for v in g["final"])
        for (dataset, strategy), g in frame.groupby(["dataset", "strategy"], sort=False)
    )
    figure = box_figure(
        "gp-beats-clipping",
        "Gradient penalty against weight clipping at equal generator iterations",
        "Per run, the final distance to the data (W1 on the toy mixtures, FID on mnist-5k) divided "
        "by the median over both strategies' runs of that dataset (below 1: better than the "
        "median); diverged runs rank worst and are not drawn.",
        frame[np.isfinite(frame["relative distance"])],
        "dataset",
        "relative distance",
        hue="strategy",
    )
    clipped = frame["strategy"] == "wgan"
    return Groups(
        "wgan (weight clipping)",
        frame.loc[clipped, "relative distance"].to_numpy(),
        "wgan-gp",
        frame.loc[~clipped, "relative distance"].to_numpy(),
        "final distance to the data relative to the dataset's median, per run (diverged: worst), "
        "8gaussians, 25gaussians and mnist-5k pooled",
        notes,
        figure,
    )


_builtin(
    Claim(
        id="gp-beats-clipping",
        statement="At equal generator iterations, WGAN with the gradient penalty ends closer to "
        "the data than WGAN with weight clipping (lower FID on images, lower W1 on toy data).",
        source=f"{WGAN_GP_PAPER}, Sec. 5.3 and Fig. 3 (left)",
        repeated_by="WGAN-GP write-ups: 'converges faster and to better samples than WGAN'",
        experiments=(TOY, MNIST),
        measure=_gp_against_clipping,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        datasets=("8gaussians", "25gaussians", "mnist-5k"),
        could_change="Both losses are far from converged at this budget; the paper's gap is "
        "about where each converges, over 200,000 iterations.",
    )
)


# --- gan-faster-in-wall-clock --------------------------------------------------------------


def _wall_clock(tables, size) -> Groups:
    """Per mnist-5k run, training seconds until the FID along the way first reaches the quality
    threshold (halfway from the untrained generators to real data on a log scale, at the
    intermediate evaluations' sample count); a run that never does is censored at its budget and
    ranks slowest (ties with the other censored runs): a Mann-Whitney test with censoring at a
    common budget, which is Gehan's test."""
    t = tables[MNIST.name]
    runs = _finished(t["runs"])
    runs = runs[runs["dataset"] == "mnist-5k"]
    refs = _references(t, "mnist-5k")
    threshold = answers.quality_threshold(refs, FID, INTERMEDIATE)
    times = answers.run_times_to_quality(runs, t["evals"], refs, FID)
    budgets = runs.set_index("run_id")["train_s"]
    notes = [
        f"threshold: FID {rs.fmt(threshold)} at {int(runs['intermediate_samples'].iloc[0])} "
        "samples (the geometric mean of the untrained generators' and real data's FID)"
        if len(runs)
        else "no finished run"
    ]
    for strategy, g in times.groupby("strategy", sort=False):
        reached = g[np.isfinite(g["seconds"])]
        notes.append(
            f"{strategy}: reached in {len(reached)} of {len(g)} runs; seconds per run "
            + ", ".join("never" if math.isinf(v) else rs.fmt(v) for v in g["seconds"])
            + "; generator iterations "
            + ", ".join("never" if math.isinf(v) else str(int(v)) for v in g["iters"])
        )
    gan, gp = (times[times["strategy"] == s] for s in ("gan", "wgan-gp"))
    if len(gan) and len(gp):
        p = _logrank(gp, gan, budgets)
        result = f"p = {p:.2g}" if math.isfinite(p) else "undefined (no run reached it)"
        notes.append(f"log-rank test (censored at each run's training time): {result}")
    figure = _reached_figure(times, budgets)
    return Groups(
        "wgan-gp",
        gp["seconds"].to_numpy(),
        "gan",
        gan["seconds"].to_numpy(),
        "training seconds to the FID threshold on mnist-5k, per run (never reached: slowest)",
        tuple(notes),
        figure,
    )


def _logrank(slower: pd.DataFrame, faster: pd.DataFrame, budgets: pd.Series) -> float:
    """scipy's log-rank test of two groups of times, a run that never reached the threshold
    being right-censored at its training time."""

    def censored(times: pd.DataFrame):
        seconds = times["seconds"].to_numpy()
        reached = np.isfinite(seconds)
        return stats.CensoredData(
            uncensored=seconds[reached], right=budgets[times.loc[~reached, "run_id"]].to_numpy()
        )

    return float(stats.logrank(censored(slower), censored(faster)).pvalue)


def _reached_figure(times: pd.DataFrame, budgets: pd.Series) -> Drawing:
    import matplotlib.pyplot as plt

    style, context = styled()
    with style, context:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        end = float(budgets.max()) if len(budgets) else 1.0
        for strategy, g in times.groupby("strategy", sort=False):
            reached = np.sort(g["seconds"].to_numpy())
            reached = reached[np.isfinite(reached)]
            x = np.concatenate([[0], reached, [end]])
            y = np.concatenate([[0], np.arange(1, len(reached) + 1), [len(reached)]]) / len(g)
            ax.step(x, y, where="post", label=f"{strategy} ({len(reached)} of {len(g)})")
        ax.set_xlabel("training seconds")
        ax.set_ylabel("share of runs at the threshold")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
    return Drawing(
        "gan-faster-in-wall-clock",
        "Share of runs whose FID has reached the threshold, against training time",
        "mnist-5k; each step is a run whose FID along the way first reached the threshold "
        "(halfway from the untrained generators to real data on a log scale); runs that never "
        "did keep the curve below 1 up to the end of the budget.",
        fig,
    )


_builtin(
    Claim(
        id="gan-faster-in-wall-clock",
        statement="In wall-clock time the (DCGAN) GAN reaches a given sample quality sooner than "
        "WGAN-GP, whose critic steps and penalty cost more per generator iteration.",
        source=f"{WGAN_GP_PAPER}, Sec. 5.3 and Fig. 3 (right)",
        repeated_by="WGAN-GP summaries: 'slower in wall-clock time than DCGAN'",
        experiments=(MNIST,),
        measure=_wall_clock,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        datasets=("mnist-5k",),
        could_change="A threshold nearer real data (which these short runs rarely reach) or a "
        "GPU, where the critic steps cost relatively less, could change the order.",
    )
)


# --- batchnorm-hurts-gp --------------------------------------------------------------------

# wgan-gp on mnist-5k as in mnist-strategies, with batch norm or layer norm in the critic; the
# critic without normalization is mnist-strategies' own wgan-gp.
GP_NORMS = {
    norm: Experiment(
        f"mnist-gp-{norm}norm",
        cpu=_mnist_suite(*MNIST_CPU, strategies=["wgan-gp"], critic_norm=norm),
        paper=_mnist_suite(*MNIST_PAPER, strategies=["wgan-gp"], critic_norm=norm),
    )
    for norm in ("batch", "layer")
}


def _critic_norms(tables, size) -> Groups:
    rows = []
    for norm, experiment in (("none", MNIST), *GP_NORMS.items()):
        runs = _finished(tables[experiment.name]["runs"])
        runs = runs[runs["strategy"] == "wgan-gp"]
        for fid, status, calls in zip(
            _final(runs, FID), runs["status"], runs["critic_calls"], strict=True
        ):
            rows.append({"critic norm": norm, "final FID": fid, "status": status, "calls": calls})
    frame = pd.DataFrame(rows)
    notes = tuple(
        f"{norm} ({g['calls'].iloc[0]}): final FID per seed "
        + ", ".join("diverged" if math.isinf(v) else rs.fmt(v) for v in g["final FID"])
        for norm, g in frame.groupby("critic norm", sort=False)
    )
    figure = box_figure(
        "batchnorm-hurts-gp",
        "WGAN-GP with batch norm, layer norm or no normalization in the critic",
        "Final FID per seed on mnist-5k (lower is better); diverged runs rank worst and are not "
        "drawn. With batch norm the critic scores real and generated batches in separate calls, "
        "as the papers' code does.",
        frame[np.isfinite(frame["final FID"])],
        "critic norm",
        "final FID",
    )
    batch = frame["critic norm"] == "batch"
    return Groups(
        "batch norm",
        frame.loc[batch, "final FID"].to_numpy(),
        "layer norm and none",
        frame.loc[~batch, "final FID"].to_numpy(),
        "final FID per seed on mnist-5k (diverged: worst)",
        notes,
        figure,
    )


_builtin(
    Claim(
        id="batchnorm-hurts-gp",
        statement="Batch norm in the critic breaks the per-sample gradient penalty: WGAN-GP with "
        "a batch-norm critic ends worse than with layer norm or no normalization.",
        source=f"{WGAN_GP_PAPER}, Sec. 4 ('No critic batch normalization')",
        repeated_by="WGAN-GP implementations: 'use layer norm, not batch norm, in the critic'",
        experiments=(MNIST, *GP_NORMS.values()),
        measure=_critic_norms,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        datasets=("mnist-5k",),
        could_change="The paper states it as a design rule, not a measured gap; batch norm may "
        "help early (it speeds up optimization) and hurt only later.",
    )
)


# --- wgan-robust-to-hyperparameters --------------------------------------------------------

BETAS = [[0.5, 0.999], [0.5, 0.9], [0.0, 0.9], [0.9, 0.999]]
# Each strategy's learning rate over two decades around its default (x 0.1 to x 10).
DEFAULT_LR = {"gan": 2e-4, "wgan": 5e-5, "wgan-gp": 1e-4}


def _sweep_suite(dataset: str, table: dict, samples: int, widths: list[int], depth: bool):
    hyperparameters = {
        strategy: {
            "lr": {"log-uniform": [lr / 10, lr * 10]},
            "n_critic": {"int-uniform": [1, 10]},
            **({"betas": {"choice": BETAS}} if strategy != "wgan" else {}),  # RMSProp: no betas
        }
        for strategy, lr in DEFAULT_LR.items()
    }
    fields = {"width": {"choice": widths}, **({"depth": {"int-uniform": [2, 4]}} if depth else {})}
    toy = table["arch"] == "mlp"
    return {
        "seeds": [0],  # each sampled setting is one run: the settings are the sample
        "strategies": ALL,
        "eval": {"intermediate_samples": 1000, "final_samples": 2000 if toy else 1000},
        # gan_toy.py's lambda on toy data; the paper's 10 on images (the default)
        "hyperparameters": {"wgan-gp": {"penalty_weight": 0.1}} if toy else {},
        "datasets": {dataset: table},
        "sweep": {
            "samples": samples,
            "seed": 0,
            "fields": fields,
            "hyperparameters": hyperparameters,
        },
    }


# cpu: 24 settings per strategy on 8gaussians, 1,500 iterations each, mlp width {32, 64, 128} and
# depth 2-4; paper: 48 settings on mnist-5k (dcgan28, width {32, 64, 128}), 20,000 iterations.
SWEEP = Experiment(
    "sweep-hyperparameters",
    cpu=_sweep_suite(
        "8gaussians",
        {"arch": "mlp", "batch_size": 256, "gen_iters": 1500, "eval_every": 1500},
        24,
        [32, 64, 128],
        depth=True,
    ),
    paper=_sweep_suite(
        "mnist-5k",
        {"arch": "dcgan28", "batch_size": 50, "gen_iters": 20_000, "eval_every": 20_000},
        48,
        [32, 64, 128],
        depth=False,
    ),
)


def _robustness(tables, size) -> Groups:
    """Per sampled setting, 1 when it trained (finished with a final distance to the data at
    least as good as the quality threshold: halfway from the untrained generators to real data,
    on a log scale), else 0; diverged settings did not train. The effect of a Mann-Whitney test
    on such values is the difference of the two groups' shares."""
    t = tables[SWEEP.name]
    runs = _finished(t["runs"])
    dataset = next(iter(SWEEP.document(size)["datasets"]))
    metric = W1 if W1 in runs and runs[W1].notna().any() else FID
    threshold = answers.quality_threshold(_references(t, dataset), metric, rs.FINAL)
    frame = runs.assign(
        final=_final(runs, metric),
        trained=lambda f: (f["status"] == gans.DONE) & (f[metric] <= threshold),
    )
    notes = [
        f"sweep: {runs['sweep'].iloc[0] if len(runs) else ''}",
        f"threshold: final {rs.metric_name(metric)} ≤ {rs.fmt(threshold)}",
    ]
    for strategy, g in frame.groupby("strategy", sort=False):
        finite = g.loc[np.isfinite(g["final"]), "final"]
        low, high = np.percentile(finite, [25, 75]) if len(finite) else (math.nan, math.nan)
        notes.append(
            f"{strategy}: {int(g['trained'].sum())} of {len(g)} settings trained "
            f"({g['trained'].mean():.0%}); {int((g['status'] == gans.DIVERGED).sum())} diverged; "
            f"final {rs.metric_name(metric)} median {rs.fmt(finite.median())}, 25-75% "
            f"{rs.fmt(low)} to {rs.fmt(high)}"
        )
    figure = box_figure(
        "wgan-robust-to-hyperparameters",
        f"Final {rs.metric_name(metric)} over sampled settings, per strategy",
        f"One point per sampled setting (learning rate, n_critic, Adam's betas, width and depth: "
        f"the distributions are in the notes) on {dataset}; the "
        "dotted line is the threshold a setting must reach to count as trained. Diverged "
        "settings are counted in the notes.",
        frame[np.isfinite(frame["final"])],
        "strategy",
        "final",
    )
    axis = figure.fig.axes[0]
    axis.set_yscale("log")
    axis.set_ylabel(f"final {rs.metric_name(metric)}")
    if math.isfinite(threshold):
        axis.axhline(threshold, color="0.4", linestyle=":", linewidth=1)
    wgans = frame["strategy"].isin(["wgan", "wgan-gp"])
    return Groups(
        "wgan and wgan-gp",
        frame.loc[wgans, "trained"].to_numpy(dtype=float),
        "gan",
        frame.loc[frame["strategy"] == "gan", "trained"].to_numpy(dtype=float),
        "per sampled setting, 1 if it trained and 0 if not",
        tuple(notes),
        figure,
    )


_builtin(
    Claim(
        id="wgan-robust-to-hyperparameters",
        statement="WGANs train under a much wider range of settings than the GAN: over randomly "
        "sampled learning rates, critic steps, optimizer momenta and network sizes, a larger "
        "share of WGAN settings reach good samples.",
        source=f"{WGAN_PAPER}, Sec. 4.3; {WGAN_GP_PAPER}, Sec. 5.1 ('stable training of a wide "
        "variety of architectures with almost no hyperparameter tuning')",
        repeated_by="WGAN tutorials: 'no need to balance generator and discriminator carefully'",
        experiments=(SWEEP,),
        measure=_robustness,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.25, alpha=BUILTIN_ALPHA),
        could_change="Settings are sampled around each strategy's own default learning rate; a "
        "longer budget lets slow settings train, and the papers sampled architectures more "
        "widely (nonlinearities, normalization) than this sweep does.",
    )
)


# --- critic-overfits-small-data ------------------------------------------------------------

SMALL = "mnist-5k:n=1000"
# wgan-gp on 1,000 of mnist-5k's 4,000 training digits, otherwise as mnist-strategies, whose
# wgan-gp runs on every training digit are the comparison.
SMALL_DATA = Experiment(
    "mnist-small-data",
    cpu=_mnist_suite(*MNIST_CPU, strategies=["wgan-gp"], dataset=SMALL),
    paper=_mnist_suite(*MNIST_PAPER, strategies=["wgan-gp"], dataset=SMALL),
)


def heldout_gaps(curves: pd.DataFrame) -> pd.DataFrame:
    """Per held-out check of a run: the critic loss on held-out digits minus the critic loss on
    training batches, averaged over the iterations since the previous check (columns gen_iter,
    gap). Positive: the critic scores its training digits as more real than unseen ones."""
    checks = curves[curves["heldout_critic_loss"].notna()].sort_values("gen_iter")
    window = np.searchsorted(checks["gen_iter"].to_numpy(), curves["gen_iter"].to_numpy())
    training = curves["critic_loss"].groupby(window).mean()
    training = training.reindex(range(len(checks))).to_numpy()
    return pd.DataFrame(
        {
            "gen_iter": checks["gen_iter"].to_numpy(),
            "gap": checks["heldout_critic_loss"].to_numpy() - training,
        }
    )


def _overfitting(tables, size) -> Groups:
    """Per run, the mean held-out gap (``heldout_gaps``) over the second half of training; a run
    that diverged before its second half has none and ranks as the largest gap."""
    rows, points = [], []
    for label, experiment, dataset in (
        ("1,000 digits", SMALL_DATA, SMALL),
        ("4,000 digits", MNIST, "mnist-5k"),
    ):
        t = tables[experiment.name]
        runs = _finished(t["runs"])
        runs = runs[(runs["strategy"] == "wgan-gp") & (runs["dataset"] == dataset)]
        for run in runs.to_dict("records"):
            gaps = heldout_gaps(t["curves"][t["curves"]["run_id"] == run["run_id"]])
            late = gaps[gaps["gen_iter"] > run["budget_gen_iters"] / 2]
            early = gaps[gaps["gen_iter"] <= run["budget_gen_iters"] / 2]
            good = run["status"] == gans.DONE and len(late)
            rows.append(
                {
                    "data": label,
                    "late gap": float(late["gap"].mean()) if good else math.inf,
                    "early gap": float(early["gap"].mean()) if len(early) else math.nan,
                }
            )
            points += [{"data": label, **point} for point in gaps.to_dict("records")]
    frame = pd.DataFrame(rows)
    notes = tuple(
        f"{label}: mean gap over the first half per seed "
        + ", ".join(rs.fmt(v) for v in g["early gap"])
        + "; over the second half "
        + ", ".join("diverged" if math.isinf(v) else rs.fmt(v) for v in g["late gap"])
        for label, g in frame.groupby("data", sort=False)
    )
    figure = _gap_figure(pd.DataFrame(points, columns=["data", "gen_iter", "gap"]))
    small = frame["data"] == "1,000 digits"
    return Groups(
        "1,000 training digits",
        frame.loc[small, "late gap"].to_numpy(),
        "4,000 training digits",
        frame.loc[~small, "late gap"].to_numpy(),
        "held-out minus training critic loss, mean over the second half of training, per seed",
        notes,
        figure,
    )


def _gap_figure(points: pd.DataFrame) -> Drawing:
    import matplotlib.pyplot as plt
    import seaborn as sns

    style, context = styled()
    with style, context:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        if len(points):
            sns.lineplot(
                points,
                x="gen_iter",
                y="gap",
                hue="data",
                estimator="median",
                errorbar=("pi", 100),
                ax=ax,
            )
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1))
        ax.axhline(0, color="0.4", linewidth=1)
        ax.set_xlabel("generator iteration")
        ax.set_ylabel("held-out − training critic loss")
    return Drawing(
        "critic-overfits-small-data",
        "The critic's loss on held-out digits minus its loss on training digits",
        "wgan-gp on mnist-5k with 1,000 or all 4,000 training digits; at each held-out check, the "
        "critic loss on a batch of test digits minus the training critic loss averaged since the "
        "previous check; median over seeds, band from the lowest to the highest seed.",
        fig,
    )


_builtin(
    Claim(
        id="critic-overfits-small-data",
        statement="On a small training set the critic overfits: its loss on held-out data drifts "
        "away from its training loss as training goes on, much more than on a larger set.",
        source=f"{WGAN_GP_PAPER}, Sec. 5.6 and Fig. 5",
        experiments=(MNIST, SMALL_DATA),
        measure=_overfitting,
        rule=Rule(MANN_WHITNEY, smallest_effect=0.5, alpha=BUILTIN_ALPHA),
        datasets=("mnist-5k", SMALL),
        could_change="Overfitting grows with training: 400 generator iterations are 100 passes "
        "over 1,000 digits but may be too few for the gap to open; the paper trained far longer.",
    )
)
