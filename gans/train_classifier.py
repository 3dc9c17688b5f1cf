"""Train a dataset's classifier extractor and write its weights file.

    python -m gans.train_classifier DATASET --out FILE

Training is the one ``gans.feature_extractor_classifier`` runs itself (fixed thread count and seed,
deterministic algorithms), so on one CPU kind and torch version the file is the same every time.
Evaluations use it through the ``classifier_weights`` option of ``gans.evaluate``,
``gans.evaluate_real`` and ``gans.metrics_image.evaluate_images``; their rows then name the
classifier by the hash of these weights, never by the shipped classifier's name.

To regenerate a shipped file (after a change of the recipe or the feature layers, with
``CLASSIFIER_CODE_VERSION`` bumped, or of the data):

1. ``python -m gans.train_classifier mnist-5k --out gans/classifier_weights/mnist-5k.pt``
2. Copy the printed SHA-256, data hash and accuracy into ``SHIPPED["mnist-5k"]`` in
   gans/feature_extractor_classifier.py.
3. ``python tests/test_feature_extractor_classifier.py`` prints the name and the feature values
   the tests pin: put them in that file, and say in the commit why they changed.
4. Commit the file, the record and the pins together. The name changes, so classifier metrics
   of earlier reports no longer compare with new ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gans.data import DatasetUnavailable, load_dataset
from gans.feature_extractor_classifier import (
    TRAIN_COMMAND,
    classifier_extractor,
    train_weights,
)
from gans.storage import save_atomically, sha256_of_file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=TRAIN_COMMAND,
        description="Train a labelled image dataset's classifier extractor and write its weights.",
    )
    parser.add_argument("dataset", help="registered dataset name, e.g. mnist-5k or mnist:n=10000")
    parser.add_argument(
        "--out", required=True, type=Path, help="weights file to write (replaced atomically)"
    )
    parser.add_argument(
        "--data-root", type=Path, help="where dataset files live (default: $GANS_DATA_ROOT)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dataset = load_dataset(args.dataset, root=args.data_root)
        record = train_weights(dataset)
    except (ValueError, DatasetUnavailable) as error:  # RegistryError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        save_atomically(record, args.out)
    except OSError as error:
        print(f"error: --out: cannot write {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    # Read back as an evaluation will: the name printed is the name its rows carry.
    info = classifier_extractor(dataset, weights=args.out)
    print(f"name      {info.name}")
    print(f"accuracy  {info.accuracy} (test split of {args.dataset}, {len(dataset.test)} images)")
    print(f"sha256    {sha256_of_file(args.out)}")
    print(f"data      {record['data_sha256']}")
    print(f"wrote     {args.out}; evaluate with classifier_weights={str(args.out)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
