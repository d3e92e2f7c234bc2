"""The map: UMAP + HDBSCAN defaults, reproducibility, cluster numbering and the layout cache."""

from __future__ import annotations

import numpy as np
from sklearn import metrics
from sklearn.decomposition import PCA

from analysis.cluster import ReadableHDBSCAN, default_min_cluster_size, make_clusterer
from analysis.covermap import NOISE, CoverMap
from analysis.layout_cache import fit_cached
from tests.analysis_helpers import blobs, fast_cover_map

IDENTITY = {"embeddings": "embeddings-gen1.npy", "count": 0, "model_key": "blobs:test"}


class CountingPCA(PCA):
    """A PCA that counts its fits, to tell a cache hit from a recomputation."""

    fits = 0

    def fit_transform(self, X, y=None):  # noqa: N803 (scikit-learn's signature)
        type(self).fits += 1
        return super().fit_transform(X, y)


def test_min_cluster_size_scales_with_the_collection() -> None:
    assert default_min_cluster_size(4450) == 44
    assert default_min_cluster_size(100_000) == 1000
    assert default_min_cluster_size(60) == 5
    assert make_clusterer(4450).min_cluster_size == 44
    assert make_clusterer(4450, min_cluster_size=20).min_cluster_size == 20


def test_separate_groups_are_found_whole_by_excess_of_mass() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[20, 0, 0], [-20, 0, 0], [0, 20, 0], [0, -20, 0]])
    points = np.vstack([centre + rng.normal(size=(50, 3)) for centre in centres])
    clusterer = make_clusterer(len(points)).fit(points)
    clustered = clusterer.labels_ != NOISE
    assert clusterer.selection_ == "eom"
    assert clustered.mean() > 0.9
    assert metrics.adjusted_rand_score(np.repeat(np.arange(4), 50)[clustered], clusterer.labels_[clustered]) > 0.95


def test_one_continuous_cloud_falls_back_to_leaf_pockets_instead_of_one_cluster() -> None:
    rng = np.random.default_rng(0)
    cloud = rng.normal(size=(1000, 3))  # no islands: excess of mass keeps it (nearly) whole
    clusterer = make_clusterer(len(cloud)).fit(cloud)
    assert clusterer.selection_ == "leaf"
    sizes = np.bincount(clusterer.labels_[clusterer.labels_ != NOISE])
    assert len(sizes) >= 3 and sizes.max() <= 0.8 * sizes.sum()


def test_umap_and_hdbscan_defaults_recover_genre_blobs_reproducibly() -> None:
    embeddings, genres = blobs({"a": 40, "b": 40, "c": 40}, dim=64, spread=0.08)
    first = CoverMap(seed=3).fit(embeddings).layout_
    again = CoverMap(seed=3).fit(embeddings).layout_
    np.testing.assert_array_equal(first.picture, again.picture)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.picture.shape == (120, 2) and first.reduced.shape == (120, 10)
    clustered = first.labels != NOISE
    assert metrics.homogeneity_score(genres[clustered], first.labels[clustered]) > 0.95
    assert first.n_clusters >= 3


def test_clusters_are_numbered_largest_first() -> None:
    embeddings, _ = blobs({"small": 10, "big": 30, "middle": 20}, spread=0.02)
    layout = fast_cover_map().fit(embeddings).layout_
    sizes = np.bincount(layout.labels[layout.labels != NOISE])
    assert list(sizes) == sorted(sizes, reverse=True)
    assert layout.labels[15] == 0  # a "big" cover is in cluster 0


def test_injected_components_are_used_as_given() -> None:
    picture = PCA(n_components=2)
    cover_map = CoverMap(picture_reducer=picture, cluster_reducer=PCA(n_components=3),
                         clusterer=make_clusterer(0, min_cluster_size=5))
    embeddings, _ = blobs({"a": 20, "b": 20})
    fitted = cover_map.fit(embeddings)
    assert fitted.picture_reducer_ is picture
    assert fitted.layout_.reduced.shape == (40, 3)


class CountingClusterer(ReadableHDBSCAN):
    """The default clusterer, counting its fits."""

    fits = 0

    def fit(self, X, y=None):  # noqa: N803 (scikit-learn's signature)
        type(self).fits += 1
        return super().fit(X, y)


def counting_map(**clusterer_options: int) -> CoverMap:
    return CoverMap(picture_reducer=CountingPCA(n_components=2), cluster_reducer=PCA(n_components=4),
                    clusterer=CountingClusterer(**{"min_cluster_size": 5, **clusterer_options}))


def fits_after(action) -> tuple[int, int]:
    """(reducer fits, clusterer fits) that ``action`` caused."""
    CountingPCA.fits = CountingClusterer.fits = 0
    action()
    return CountingPCA.fits, CountingClusterer.fits


def test_second_run_loads_the_layout_instead_of_fitting(tmp_path) -> None:
    embeddings, _ = blobs({"a": 30, "b": 30})
    results = []
    assert fits_after(lambda: results.append(fit_cached(counting_map(), embeddings, IDENTITY, tmp_path))) == (1, 1)
    assert fits_after(lambda: results.append(fit_cached(counting_map(), embeddings, IDENTITY, tmp_path))) == (0, 0)
    (first, first_hit), (second, second_hit) = results
    assert not first_hit and second_hit
    for field in ("picture", "reduced", "labels", "probabilities"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert len(list(tmp_path.glob("reduced-*.npz"))) == 1 and len(list(tmp_path.glob("clusters-*.json"))) == 1


def test_another_cluster_size_reuses_the_reductions_and_clusters_again(tmp_path) -> None:
    embeddings, _ = blobs({"a": 30, "b": 30})
    fit_cached(counting_map(), embeddings, IDENTITY, tmp_path)
    layout = []
    assert fits_after(lambda: layout.append(fit_cached(counting_map(min_samples=2), embeddings, IDENTITY, tmp_path))) == (0, 1)
    assert not layout[0][1]


def test_a_new_index_generation_is_fitted_again(tmp_path) -> None:
    embeddings, _ = blobs({"a": 30, "b": 30})
    fit_cached(counting_map(), embeddings, IDENTITY, tmp_path)
    rebuilt = {**IDENTITY, "embeddings": "embeddings-gen2.npy"}
    assert fits_after(lambda: fit_cached(counting_map(), embeddings, rebuilt, tmp_path)) == (1, 1)


def test_a_damaged_cache_file_is_refitted_not_fatal(tmp_path) -> None:
    embeddings, _ = blobs({"a": 30, "b": 30})
    fit_cached(counting_map(), embeddings, IDENTITY, tmp_path)
    for path in tmp_path.glob("reduced-*.npz"):
        path.write_bytes(b"not a numpy file")
    layout = []
    assert fits_after(lambda: layout.append(fit_cached(counting_map(), embeddings, IDENTITY, tmp_path))) == (1, 0)
    assert len(layout[0][0].labels) == 60
    assert fit_cached(counting_map(), embeddings, IDENTITY, tmp_path)[1]
