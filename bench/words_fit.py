"""How long ``build-index --read-text`` takes to build the words index of N covers (the fitted words model, then the
tantivy candidate engine), this checkout beside an older one in the same run.

The texts are synthetic as bench/collection_scale.py makes its distractors': each cover prints as many real OCR
lines as a cover of ``--lines-index`` does (drawn from its covers' line counts, none included), each line drawn at
random from all of theirs. Each stage is the library's own (recsys.textsearch.fit_text_vectors, as
recsys.textstore.words_model calls it; index.words_engine.write_engine on the fitted cover rows) and runs in a
fresh child process whose PYTHONPATH is its checkout, so its wall time and peak memory (VmHWM) are its own. The
checkouts' model fits alternate for ``--rounds`` rounds, so the shared machine's load falls on both alike; the
engine is built from this checkout's model. Prints each stage's median seconds and peak MB, the fits' ratio,
and whether the two checkouts' models are equal array for array (terms, IDF, cover and line rows, line owners).

    git -C /path/to/repo archive main | tar -x -C /tmp/before   # the older checkout
    python bench/words_fit.py --lines-index /tmp/shared-text-idx --covers 100000 --before /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402

CHILD = """
import json, shutil, sys, time
from pathlib import Path
import numpy as np

def memory_mb(field):
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ':')) / 1024

stage, texts_file, model_file = sys.argv[1:4]
if stage == 'model':
    from recsys import textsearch
    texts = json.loads(Path(texts_file).read_text())
    inputs = memory_mb('VmRSS')
    started = time.perf_counter()
    model = textsearch.fit_text_vectors(texts)
    seconds = time.perf_counter() - started
    np.savez(model_file, **textsearch.model_arrays(model))
else:
    from index.words_engine import write_engine
    arrays = np.load(model_file)
    terms, indices, indptr = arrays['terms'], arrays['covers_indices'], arrays['covers_indptr']
    inputs = memory_mb('VmRSS')
    target = Path(model_file).with_suffix('.tantivy')
    started = time.perf_counter()
    write_engine(target, terms, indices, indptr)
    seconds = time.perf_counter() - started
    shutil.rmtree(target)
print(json.dumps({'seconds': seconds, 'peak_mb': memory_mb('VmHWM'), 'inputs_mb': inputs}))
"""


def synthetic_texts(source: list[str], count: int, seed: int = 0) -> list[str]:
    """``count`` cover texts, each as many real OCR lines of ``source`` as one of its covers prints, drawn at
    random."""
    from recsys import textsearch

    per_cover = [[line for line in text.splitlines() if textsearch.normalise(line)] for text in source]
    pool = np.array([line for lines in per_cover for line in lines], dtype=object)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(np.array([len(lines) for lines in per_cover]), count)
    return ["\n".join(rng.choice(pool, size)) if size else "" for size in drawn]


def run_stage(checkout: Path, stage: str, texts_file: Path, model_file: Path) -> dict[str, float]:
    """One stage in a fresh process of ``checkout``: its seconds, peak MB and MB before the stage."""
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", CHILD, stage, str(texts_file), str(model_file)], cwd=checkout,
                          env=environment, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_model(one: Path, other: Path) -> bool:
    """Whether two stored models (textsearch.model_arrays) hold the same arrays, values and types."""
    with np.load(one) as first, np.load(other) as second:
        return set(first.files) == set(second.files) and all(
            first[name].dtype == second[name].dtype and np.array_equal(first[name], second[name])
            for name in first.files
        )


def summary(runs: list[dict[str, float]]) -> str:
    seconds = [run["seconds"] for run in runs]
    return (f"{statistics.median(seconds):.1f} ({min(seconds):.1f}-{max(seconds):.1f}) | "
            f"{max(run['peak_mb'] for run in runs):,.0f} ({statistics.median(run['inputs_mb'] for run in runs):,.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines-index", type=Path, required=True, help="index with text whose OCR lines to draw")
    parser.add_argument("--covers", type=int, default=100_000)
    parser.add_argument("--before", type=Path, help="an older sleeve checkout whose fit to time beside this one")
    parser.add_argument("--rounds", type=int, default=3, help="fits per checkout, alternating")
    args = parser.parse_args()
    from index.store import load_index
    from recsys.textstore import texts_by_row

    source = texts_by_row(load_index(args.lines_index))
    if source is None:
        raise SystemExit(f"{args.lines_index} holds no cover text; build it with --read-text")
    texts = synthetic_texts([str(text) for text in source], args.covers)
    print(f"{machine_line(describe_machine())}\n{args.covers:,} synthetic cover texts from the OCR lines of "
          f"{len(source):,} covers of {args.lines_index}, {sum(map(len, texts)):,} characters", flush=True)
    checkouts = {"this checkout": REPO} | ({f"before ({args.before})": args.before} if args.before else {})
    with tempfile.TemporaryDirectory() as scratch:
        texts_file = Path(scratch) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        models = {label: Path(scratch) / f"model-{number}.npz" for number, label in enumerate(checkouts)}
        fits: dict[str, list[dict[str, float]]] = {label: [] for label in checkouts}
        for _ in range(args.rounds):
            for label, checkout in checkouts.items():
                fits[label].append(run_stage(checkout, "model", texts_file, models[label]))
                print(f"  {label}: fit {fits[label][-1]['seconds']:.1f} s", flush=True)
        engine = [run_stage(REPO, "engine", texts_file, models["this checkout"]) for _ in range(args.rounds)]
        equal = args.before and same_model(*models.values())
    print(f"\n{machine_line(describe_machine())}\n")
    print("| stage | seconds: median (min-max) | peak MB (MB before the stage) |\n|---|---:|---:|")
    for label in checkouts:
        print(f"| words model, {label} | {summary(fits[label])} |")
    print(f"| words engine (tantivy), this checkout's model | {summary(engine)} |")
    if args.before:
        mine, theirs = (statistics.median(run["seconds"] for run in fits[label]) for label in checkouts)
        print(f"\nfit: before / this checkout = {theirs / mine:.1f}x; models equal array for array: {bool(equal)}")


if __name__ == "__main__":
    main()
