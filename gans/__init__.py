"""gans: data, models, loss strategies and the shared trainer of the GAN loss benchmark.

The public API, used by the ``benchmarks`` application and by plugins, is what this module exports.
"""

from gans.constraints import Constraint, WeightClipping
from gans.data import DATASETS, Dataset, DatasetUnavailable, load_dataset, register_dataset
from gans.evaluation import evaluate, evaluate_real
from gans.feature_extractor_classifier import ClassifierWeightsError, classifier_extractor
from gans.hyperparameters import (
    OPTIMIZERS,
    ConfigError,
    CriticSchedule,
    Hyperparameters,
    batches_per_epoch,
    critic_schedule,
    epochs_to_gen_iters,
    hyperparameter,
)
from gans.losses import JSLoss, Loss, WassersteinLoss
from gans.metrics import MetricRow
from gans.models import (
    ARCHITECTURES,
    CRITIC_NORMS,
    ArchConfig,
    Architecture,
    build_models,
    register_architecture,
)
from gans.penalties import GradientPenalty, Penalty, PenaltyOutput
from gans.plugins import (
    ENTRY_POINT_GROUP,
    PluginError,
    load_plugin,
    plugin_sources,
    register_entry_points,
)
from gans.registry import Registry, RegistryError
from gans.stacking import StackedTrainer, StackingError, stacking_obstacle
from gans.storage import save_atomically, write_atomically
from gans.strategies import (
    STRATEGIES,
    Strategy,
    StrategyError,
    default_hyperparameters,
    make_strategy,
    register_strategy,
)
from gans.trainer import (
    CURVE_COLUMNS,
    DIVERGED,
    DONE,
    LAYER_GRAD_NORM,
    PRECISIONS,
    RUNNING,
    ForeignCheckpoint,
    TrainConfig,
    Trainer,
)

__all__ = [
    "ARCHITECTURES",
    "CRITIC_NORMS",
    "CURVE_COLUMNS",
    "LAYER_GRAD_NORM",
    "DATASETS",
    "DIVERGED",
    "DONE",
    "ENTRY_POINT_GROUP",
    "OPTIMIZERS",
    "PRECISIONS",
    "RUNNING",
    "STRATEGIES",
    "ArchConfig",
    "Architecture",
    "ClassifierWeightsError",
    "ConfigError",
    "Constraint",
    "CriticSchedule",
    "Dataset",
    "DatasetUnavailable",
    "GradientPenalty",
    "Hyperparameters",
    "hyperparameter",
    "JSLoss",
    "Loss",
    "MetricRow",
    "Penalty",
    "PenaltyOutput",
    "PluginError",
    "Registry",
    "RegistryError",
    "StackedTrainer",
    "StackingError",
    "Strategy",
    "StrategyError",
    "TrainConfig",
    "ForeignCheckpoint",
    "Trainer",
    "WassersteinLoss",
    "WeightClipping",
    "batches_per_epoch",
    "build_models",
    "classifier_extractor",
    "critic_schedule",
    "default_hyperparameters",
    "epochs_to_gen_iters",
    "evaluate",
    "evaluate_real",
    "load_dataset",
    "load_plugin",
    "make_strategy",
    "plugin_sources",
    "register_architecture",
    "register_dataset",
    "register_entry_points",
    "register_strategy",
    "save_atomically",
    "stacking_obstacle",
    "write_atomically",
]
