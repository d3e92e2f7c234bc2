"""The CNN fine-tune on a whole index: how long each stage takes and where validation macro-F1 goes per epoch.

Uses the same group-aware 60/20/20 split as ``sleeve evaluate`` (same seed) and looks only at the training and
validation covers: settings chosen from this bench never see the test covers. Prints one JSON object.

    python bench/finetune.py --index /work/dev/index-effnet --trainable-blocks 1 --views 4 --epochs 8
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--trainable-blocks", type=int, default=5)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--head-learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=42, help="split seed (as sleeve evaluate --seed)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    import numpy as np

    from index.store import load_index
    from recsys.classify.data import from_index
    from recsys.classify.finetune import FineTunedCNN
    from recsys.classify.split import dhashes, near_duplicate_groups, train_validation_test

    started = time.perf_counter()
    covers = from_index(load_index(args.index))
    names = train_validation_test(covers.genres, near_duplicate_groups(dhashes(covers.paths)), seed=args.seed)
    train, validation = covers.subset(names == "train"), covers.subset(names == "validation")
    model = FineTunedCNN(
        trainable_blocks=args.trainable_blocks,
        views=args.views,
        max_epochs=args.epochs,
        patience=args.patience,
        learning_rate=args.learning_rate,
        head_learning_rate=args.head_learning_rate,
        progress=True,
    )
    model.fit(train.paths, train.genres, eval_set=(validation.paths, validation.genres))
    result = {
        "machine": describe_machine(),
        "settings": {k: v for k, v in model.get_params().items() if k != "progress"},
        "train_covers": len(train),
        "validation_covers": len(validation),
        "history": model.history_,
        "best_epoch": model.best_epoch_,
        "best_validation_macro_f1": float(np.max([r["validation_macro_f1"] for r in model.history_])),
        "total_seconds": time.perf_counter() - started,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
