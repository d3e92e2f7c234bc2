"""The query path of issue 9: ONNX Runtime queries without torch, numpy preprocessing equal to torch's, one
read and one encoding per query cover, and many queries in one recommend process."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageOps

from cli import main
from recsys.build import build_index
from recsys.classify.persist import ClassifierInfo, save_classifier
from recsys.classify.predict import GenrePredictor
from recsys.encoders import create_encoder, encoder_for_spec, with_runtime
from recsys.encoders import onnx as onnx_module
from recsys.encoders.efficientnet import PREPROCESS, EfficientNetLite0Encoder
from recsys.recommend import Recommender
from recsys.settings import Settings
from tests.conftest import make_cover

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "open_clip", "skops", "sklearn", "rapidocr_onnxruntime")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Covers, an efficientnet-lite0 index on ONNX Runtime (the default), and its cache folder."""
    root = tmp_path_factory.mktemp("query")
    for g, genre in enumerate(["rock", "jazz"]):
        for i in range(4):
            make_cover(root / "covers" / genre / f"{genre}-{i}.png", seed=70 + 10 * g + i)
    build_index(root / "index", covers=root / "covers", encoder="efficientnet-lite0", workers=0,
                settings=Settings(cache_dir=root / "cache", progress=False))
    return root / "covers", root / "index", root / "cache"


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """Odd shapes on purpose: landscape, portrait, smaller than the input, and a square."""
    sizes = [(301, 200), (157, 333), (96, 120), (224, 224), (640, 479)]
    return [make_cover_image(seed, size) for seed, size in enumerate(sizes)]


def make_cover_image(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)


def _old_efficientnet_pixels(image: Image.Image, size: int = 224) -> torch.Tensor:
    """The torch-side preprocessing sleeve shipped before the numpy port, kept here as the reference."""
    square = ImageOps.fit(image, (size, size), method=Image.Resampling.BILINEAR)
    array = np.asarray(square, dtype=np.float32)
    return torch.from_numpy((array - 127.0) / 128.0).permute(2, 0, 1).contiguous()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_numpy_preprocessing_equals_the_torch_transforms(photos, tiny_clip) -> None:
    for image in photos:
        np.testing.assert_array_equal(PREPROCESS(image), _old_efficientnet_pixels(image).numpy())
    config, checkpoint = tiny_clip
    clip = create_encoder("clip", arch=str(config), weights=str(checkpoint), runtime="torch")
    assert clip.array_transform is not None
    for image in photos:
        torch_pixels = clip.transform(image).numpy()
        np.testing.assert_allclose(clip.array_transform(image), torch_pixels, rtol=0, atol=1e-6)


def test_onnx_vectors_from_numpy_pixels_match_the_torch_path(photos, tiny_clip, tmp_path: Path) -> None:
    config, checkpoint = tiny_clip
    clip = create_encoder("clip", arch=str(config), weights=str(checkpoint), runtime="torch")
    for base in (EfficientNetLite0Encoder(), clip):
        onnx = with_runtime(base, "onnx", tmp_path)
        torch_vectors = base.encode_images(torch.stack([base.transform(image) for image in photos]))
        onnx_vectors = onnx.encode_images(np.stack([onnx.transform(image) for image in photos]))
        assert isinstance(onnx.transform(photos[0]), np.ndarray)
        assert np.all(_cosines(torch_vectors, onnx_vectors) > 1 - 1e-5)
    reopened = encoder_for_spec(clip.spec, "onnx", tmp_path)  # from the cached export: the torch model on demand
    assert reopened._base is None and reopened.supports_text
    np.testing.assert_allclose(reopened.encode_text(["a skull"]), clip.encode_text(["a skull"]), atol=1e-6)


def test_a_cached_export_opens_without_checking_it_again(built, monkeypatch) -> None:
    _, index, cache = built
    spec = Recommender.open(index, Settings(cache_dir=cache)).encoder.spec
    record = json.loads(next((cache / "onnx").glob("*.json")).read_text())
    assert record["spec"]["weights_sha256"] == spec.weights_sha256 and record["agreement"] > 0.9999

    def no_second_check(*args, **kwargs):
        raise AssertionError("the export was verified when it was made; it must not be verified again")

    monkeypatch.setattr(onnx_module, "_agreement", no_second_check)
    monkeypatch.setattr(EfficientNetLite0Encoder, "__init__", no_second_check)
    encoder = encoder_for_spec(spec, cache_dir=cache)
    assert encoder.spec.key == spec.key and encoder.encode_images(np.zeros((1, 3, 224, 224), np.float32)).shape == (1, 1280)


def test_int8_quantisation_says_at_most_one_line(built, tmp_path: Path, caplog, capfd) -> None:
    _, _, cache = built
    export = next(path for path in (cache / "onnx").glob("*.onnx") if not path.name.endswith(".int8.onnx"))
    fp32 = tmp_path / export.name
    fp32.write_bytes(export.read_bytes())
    with caplog.at_level(logging.DEBUG):
        assert onnx_module.quantize_int8(fp32).is_file()
    said = [record for record in caplog.records if record.levelno >= logging.INFO]
    assert len(said) <= 1 and all(record.name == "recsys.encoders.onnx" for record in said), said
    assert "quantize" not in capfd.readouterr().err


def test_an_export_from_before_the_record_is_checked_once_and_recorded(built, tmp_path: Path) -> None:
    _, index, cache = built
    spec = Recommender.open(index, Settings(cache_dir=cache)).encoder.spec
    old = tmp_path / "onnx"
    old.mkdir()
    export = next((cache / "onnx").glob("*.onnx"))
    (old / export.name).write_bytes(export.read_bytes())
    assert onnx_module.read_export(spec, tmp_path) is None
    encoder_for_spec(spec, cache_dir=tmp_path)
    assert onnx_module.read_export(spec, tmp_path) is not None


def test_threads_reach_onnx_runtime_and_faiss(built) -> None:
    """``Settings.threads`` caps the image tower's ONNX Runtime threads and FAISS's, and the answers stay the
    same; 0 leaves both libraries at their defaults."""
    import faiss

    covers, index, cache = built
    before = faiss.omp_get_max_threads()
    query = str(next(covers.rglob("*.png")))
    try:
        default = Recommender.open(index, Settings(cache_dir=cache, progress=False))
        assert default.encoder.session.get_session_options().intra_op_num_threads == 0
        assert faiss.omp_get_max_threads() == before
        one = Recommender.open(index, Settings(cache_dir=cache, progress=False, threads=1))
        assert one.encoder.session.get_session_options().intra_op_num_threads == 1
        assert faiss.omp_get_max_threads() == 1
        same = default.similar_to_cover(query, k=3)["path"].tolist()
        assert one.similar_to_cover(query, k=3)["path"].tolist() == same
    finally:
        faiss.omp_set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        Settings(threads=-1)


def test_recommend_on_an_onnx_index_imports_no_torch_skops_or_sklearn(built) -> None:
    covers, index, cache = built
    script = (
        "import json, runpy, sys\n"
        f"sys.argv = ['cli.py', 'recommend', '--cover', {str(covers / 'rock' / 'rock-1.png')!r}, "
        f"'--index', {str(index)!r}, '--cache', {str(cache)!r}, '--json']\n"
        "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit as exit:\n    assert not exit.code\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == [], "a query on an ONNX index imported these"
    assert json.loads("\n".join(lines[:-1]))["results"], "and it answered"


def test_a_query_cover_is_read_and_encoded_once(built, monkeypatch) -> None:
    """recommend's results and its predicted genre share one read of the file and one encoding."""
    from sklearn.linear_model import LogisticRegression

    import recsys.recommend as recommend_module

    covers, index, cache = built
    recommender = Recommender.open(index, Settings(cache_dir=cache))
    labels = recommender.index.metadata["genre"].astype(str).to_numpy()
    estimator = LogisticRegression(max_iter=200).fit(np.asarray(recommender.index.embeddings), labels)
    info = ClassifierInfo("linear", "Logistic regression", "embeddings", recommender.index.info.model_key,
                          sorted(set(labels)), {}, len(labels), None)
    save_classifier(index, estimator, info)
    try:
        predictor = GenrePredictor.for_index(recommender)
        reads, encodings = [], []
        read, encode = recommend_module.read_cover_bytes, recommender.encoder.encode_images
        monkeypatch.setattr(recommend_module, "read_cover_bytes", lambda path, *limits, **sniff: reads.append(path) or read(path, *limits, **sniff))
        monkeypatch.setattr(recommender.encoder, "encode_images", lambda batch: encodings.append(1) or encode(batch))
        cover = covers / "jazz" / "jazz-2.png"
        query = recommender.read_query(cover)
        results = recommender.similar_to_cover(query, k=3)
        genre = predictor.query_genre(query)
        assert len(reads) == 1 and len(encodings) == 1
        assert genre["predicted_genre"] in {"rock", "jazz"} and str(cover) not in set(results["path"])
    finally:
        shutil.rmtree(index / "classifier")


def test_recommend_answers_several_covers_and_a_folder_in_one_process(built, tmp_path: Path) -> None:
    covers, index, cache = built
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    first, second = str(covers / "rock" / "rock-0.png"), str(covers / "jazz" / "jazz-3.png")

    def recommend(*args: str):
        return CliRunner().invoke(main, ["recommend", "--index", str(index), "--cache", str(cache), "-k", "2", *args])

    lines = recommend("--cover", first, "--cover", str(bad), "--cover", second, "--json")
    assert lines.exit_code == 1, lines.output
    answers = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [a["query"]["cover"] for a in answers] == [first, second] and all(len(a["results"]) == 2 for a in answers)
    assert lines.stderr.count("error: cannot use") == 1 and str(bad) in lines.stderr

    folder = recommend("--cover", str(covers / "jazz"), "--json")
    assert folder.exit_code == 0, folder.output
    assert len(folder.stdout.splitlines()) == 4, "one JSON line per cover of the folder"

    tables = recommend("--cover", first, "--cover", second)
    assert tables.exit_code == 0 and tables.stdout.count("query: ") == 2
    assert tables.stdout.splitlines()[1].split() == ["rank", "score", "genre", "path", "match"]

    single = recommend("--cover", first, "--json")
    assert single.exit_code == 0 and json.loads(single.stdout)["query"] == {"cover": first}, "one cover: one object"


def test_a_cover_whose_name_is_not_utf8_is_a_query_like_any_other(built, tmp_path: Path) -> None:
    covers, index, cache = built
    name = os.fsdecode(b"caf\xe9-\xff.png")  # Latin-1 bytes: not UTF-8, as an old archive or a USB stick gives
    cover = shutil.copy(covers / "rock" / "rock-0.png", tmp_path / name)
    broken = tmp_path / os.fsdecode(b"broken-\xfe.jpg")
    broken.write_text("not a picture")

    def recommend(*args: str):
        return CliRunner().invoke(main, ["recommend", "--index", str(index), "--cache", str(cache), "-k", "3", *args])

    for extra in ([], ["--genre", "rock"]):  # the FAISS search and the exact search with a row mask
        answer = recommend("--cover", str(cover), "--json", *extra)
        assert answer.exit_code == 0, answer.output
        found = json.loads(answer.stdout)
        assert found["query"]["cover"] == str(tmp_path / "caf\\xe9-\\xff.png")
        paths = [row["path"] for row in found["results"]]
        assert len(paths) == 3 and str(covers / "rock" / "rock-0.png") not in paths, "its own content is left out"
    table = recommend("--cover", str(cover), "--cover", str(broken))
    assert table.exit_code == 1 and "query: " + str(tmp_path / "caf\\xe9-\\xff.png") in table.stdout
    assert "error: cannot use " + str(tmp_path / "broken-\\xfe.jpg") in table.stderr, table.stderr


def test_the_ocr_reader_is_built_once_for_many_queries(built, monkeypatch) -> None:
    """A text classifier reads each query cover's text with one reader per process, not one per query."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import recsys.ocr as ocr

    covers, index, cache = built
    recommender = Recommender.open(index, Settings(cache_dir=cache))
    estimator = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(["nashville", "blue note"], ["rock", "jazz"])
    info = ClassifierInfo("text", "Text", "text", recommender.index.info.model_key, ["jazz", "rock"], {}, 2, None)
    save_classifier(index, estimator, info)
    built_readers = []

    class CountingReader:
        def __init__(self, **_: object) -> None:
            built_readers.append(self)

        def read(self, source):
            assert isinstance(source, bytes), "the reader gets the bytes read once, not the path again"
            return [ocr.TextLine("blue note", 0.9)]

    monkeypatch.setattr(ocr, "CoverTextReader", CountingReader)
    try:
        predictor = GenrePredictor.for_index(recommender)
        answers = [predictor.query_genre(path) for path in sorted((covers / "rock").iterdir())[:3]]
        assert len(built_readers) == 1 and {a["predicted_genre"] for a in answers} == {"jazz"}
    finally:
        shutil.rmtree(index / "classifier")
