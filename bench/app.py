"""The web app's answer time: from an uploaded cover to the result list, server side, warm, beside the cold CLI.

The app runs in-process under Streamlit's AppTest (the same script a server runs, without the browser). After one
warm-up query (the index and encoder load once per server process), each of ``--queries`` different covers is
uploaded as a user would (re-encoded, resized) and the page run is timed until the result grid is built. The
library call alone is the time the page itself prints. The cold CLI ``recommend`` (a fresh process per question)
runs on the same covers in the same run.

    python cli.py build-index --covers ../shared/covers --index /tmp/bench-index
    python bench/app.py --index /tmp/bench-index --covers ../shared/covers
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, machine_line  # noqa: E402


def upload_bytes(path: Path) -> bytes:
    """The cover as a user would upload it: resized to 220 px and saved again as JPEG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(path).convert("RGB").resize((220, 220)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def warm_app(index: Path, covers: list[Path], k: int, by: str | None) -> tuple[list[float], list[float]]:
    """(page run ms, library call ms as the page reports it) for each cover, after one warm-up upload."""
    from streamlit.testing.v1 import AppTest

    os.environ["SLEEVE_APP_INDEX"] = str(index)
    app = AppTest.from_file(str(ROOT / "webapp" / "app.py"), default_timeout=300).run()
    page, library = [], []
    for number, cover in enumerate([covers[-1], *covers]):
        data = upload_bytes(cover)
        if number == 1:  # the controls show once there is a query
            app.slider(key="k").set_value(k)
            if by is not None:
                app.radio(key="by").set_value(by)
        started = time.perf_counter()
        app.file_uploader[0].set_value((f"query-{number}.jpg", data, "image/jpeg")).run()
        elapsed = (time.perf_counter() - started) * 1000
        if app.exception or app.error:
            raise SystemExit(f"the app failed on {cover}: {[e.value for e in [*app.exception, *app.error]]}")
        said = next(c.value for c in app.caption if " look-alikes of " in c.value)
        if number:  # the first is the warm-up
            page.append(elapsed)
            library.append(float(said.rsplit(" in ", 1)[1].removesuffix(" ms")))
    return page, library


def cold_cli(index: Path, covers: list[Path], k: int, by: str | None) -> list[float]:
    """Wall ms of ``python cli.py recommend`` in a fresh process per cover."""
    times = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for cover in covers:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "recommend", "--index", str(index), "--cover", str(cover),
             "-k", str(k), "--json", *(["--by", by] if by else [])],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(times):8.1f} ms   p90 {p90:8.1f} ms   (n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, type=Path, help="index folder (build-index first)")
    parser.add_argument("--covers", type=Path, default=ROOT.parent / "shared" / "covers",
                        help="folder of covers to query with (a seeded sample)")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--cli-queries", type=int, default=3, help="cold CLI runs (each a fresh process)")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--by", choices=["look", "words", "both"],
                        help="match by (an index with cover text only) [default: the page's, both]")
    args = parser.parse_args()

    import random

    from recsys.images import IMAGE_SUFFIXES

    found = sorted(p for p in args.covers.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    covers = random.Random(0).sample(found, args.queries)
    start = describe_machine()
    page, library = warm_app(args.index, covers, args.k, args.by)
    cli = cold_cli(args.index, covers[: args.cli_queries], args.k, args.by)
    end = describe_machine()
    print(f"machine: {machine_line(start)}; load at the end {end['load_average_1m']}")
    by = args.by or "the page's default"
    print(f"index {args.index}, k = {args.k}, by {by}, "
          f"query covers: a seeded sample of {len(found):,} in {args.covers}")
    print(f"app, warm, upload to result grid (page run):  {summary(page)}")
    print(f"app, warm, library call (similar_to_cover):   {summary(library)}")
    print(f"CLI recommend, cold process per query:        {summary(cli)}")


if __name__ == "__main__":
    main()
