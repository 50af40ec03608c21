"""Mixture files (dsmtheory.mixture_io): JSON and .npz round trips, the checks on reading,
the content hash and the reference result files hold."""

import io
import json
import zipfile

import jax
import numpy as np
import pytest

import dsmtheory as dsm
from dsmtheory import mixture_io


def _random_full(k=5, d=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(d)
    w = rng.uniform(0.5, 1.5, k)
    return dsm.GaussianMixture(w / w.sum(), rng.normal(size=(k, d)), covs)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("kind", ["full", "diagonal"])
def test_round_trip_keeps_the_density(tmp_path, suffix, kind):
    gm = _random_full() if kind == "full" else dsm.ring()
    path = mixture_io.save(gm, tmp_path / f"m{suffix}")
    back = mixture_io.load(path)
    assert back.diagonal == gm.diagonal and back.dim == gm.dim
    # weights and means are stored as float64 exactly (JSON through repr)
    np.testing.assert_array_equal(np.asarray(back.means), np.asarray(gm.means))
    np.testing.assert_allclose(np.asarray(back.weights), np.asarray(gm.weights), rtol=1e-15)
    # covariances are re-factorized on reading: equal to rounding
    np.testing.assert_allclose(np.asarray(back.covs), np.asarray(gm.covs), rtol=1e-13, atol=1e-15)
    x = gm.sample(jax.random.PRNGKey(0), 50)
    np.testing.assert_allclose(back.log_prob(x), gm.log_prob(x), rtol=1e-12, atol=1e-12)
    # the JSON is the format of dsm.from_json
    if suffix == ".json":
        np.testing.assert_allclose(dsm.from_json(path).log_prob(x), gm.log_prob(x), rtol=1e-12)


def test_diagonal_mixture_is_written_with_diagonal_covariances(tmp_path):
    gm = dsm.ring()
    data = json.loads(mixture_io.save(gm, tmp_path / "r.json").read_text())
    assert np.shape(data["covs"]) == (8, 2)
    with np.load(mixture_io.save(gm, tmp_path / "r.npz")) as f:
        assert f["covs"].shape == (8, 2) and f["covs"].dtype == np.float64
        assert str(f["format"]) == mixture_io.FORMAT and int(f["format_version"]) == 1


def test_npz_is_compact_against_json(tmp_path):
    # 8 bytes a number against ~20 in JSON (a full 64-D mixture of 6 components)
    gm = _random_full(k=6, d=64, seed=1)
    j = mixture_io.save(gm, tmp_path / "m.json").stat().st_size
    n = mixture_io.save(gm, tmp_path / "m.npz").stat().st_size
    numbers = 6 * (1 + 64 + 64 * 64)
    assert n < 8 * numbers + 2000 and n < j / 2


def test_load_sniffs_an_npz_by_content(tmp_path):
    path = tmp_path / "mixture.bin"
    path.write_bytes(mixture_io.to_npz_bytes(dsm.ring()))
    assert mixture_io.load(path).num_components == 8


def test_read_sizes_from_headers(tmp_path):
    gm = _random_full(k=3, d=5)
    assert mixture_io.read_sizes(mixture_io.save(gm, tmp_path / "a.npz")) == (3, 5)
    assert mixture_io.read_sizes(mixture_io.save(gm, tmp_path / "a.json")) == (3, 5)


def _npz(tmp_path, name="bad.npz", **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = tmp_path / name
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize(
    "arrays,needle",
    [
        ({"weights": [1.0], "means": [[0.0]]}, "lacks key(s): covs"),
        ({"weights": [1.0], "means": [[0.0]], "covs": [1.0], "extra": [1]}, "unknown key(s) extra"),
        ({"weights": [1.0], "means": [[0.0]], "covs": ["a"]}, "covs must hold real numbers"),
        ({"weights": [[1.0]], "means": [[0.0]], "covs": [1.0]}, "weights must have shape (K,)"),
        ({"weights": [0.5], "means": [[0.0]], "covs": [1.0]}, "weights must sum to 1"),
        ({"weights": [1.0], "means": [[0.0]], "covs": [1.0], "format": "other"}, "format must be"),
        (
            {"weights": [1.0], "means": [[0.0]], "covs": [1.0], "format_version": 99},
            "newer than this dsmtheory reads",
        ),
    ],
)
def test_bad_npz_is_refused_naming_what(tmp_path, arrays, needle):
    path = _npz(tmp_path, **{k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(ValueError, match=None) as info:
        mixture_io.load(path)
    assert needle in str(info.value)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        inner = io.BytesIO()
        np.save(inner, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        zf.writestr("weights.npy", inner.getvalue())
        for name, value in (("means", [[0.0]]), ("covs", [1.0])):
            arr = io.BytesIO()
            np.save(arr, np.asarray(value))
            zf.writestr(f"{name}.npy", arr.getvalue())
    path = tmp_path / "obj.npz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="weights must hold real numbers"):
        mixture_io.load(path)


def test_not_a_zip_and_limits(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not an .npz"):
        mixture_io.load(path)
    big = mixture_io.save(_random_full(k=3, d=5), tmp_path / "b.npz")
    with pytest.raises(ValueError, match="dimension 5 is above the supported 4"):
        mixture_io.load(big, max_dim=4)
    with pytest.raises(ValueError, match="3 components is above the supported 2"):
        mixture_io.load(big, max_components=2)


def test_save_refuses_other_suffixes_and_non_mixtures(tmp_path):
    with pytest.raises(ValueError, match=r"\.json or \.npz"):
        mixture_io.save(dsm.ring(), tmp_path / "m.txt")
    with pytest.raises(TypeError, match="GaussianMixture"):
        mixture_io.save({"weights": [1.0]}, tmp_path / "m.json")


def test_content_hash_identifies_the_numbers():
    a = dsm.bimodal_1d()
    assert mixture_io.content_hash(a) == mixture_io.content_hash(dsm.bimodal_1d())
    assert mixture_io.content_hash(a) != mixture_io.content_hash(dsm.bimodal_1d(std=0.2500001))
    assert (
        mixture_io.content_hash(a).startswith("sha256:") and len(mixture_io.content_hash(a)) == 71
    )


def test_reference_inlines_only_small_mixtures():
    small = mixture_io.reference(dsm.ring(), "ring()")
    assert small["source"] == "ring()" and small["num_components"] == 8 and small["dim"] == 2
    assert small["sha256"] == mixture_io.content_hash(dsm.ring())
    assert np.shape(small["inline"]["covs"]) == (8, 2)
    assert len(json.dumps(small["inline"])) < mixture_io.INLINE_LIMIT
    large = mixture_io.reference(_random_full(k=2, d=64), "file.npz")
    assert "inline" not in large and large["dim"] == 64
    # the reference of a 64-D mixture is small whatever K is
    assert len(json.dumps(large)) < 300


def test_top_level_aliases():
    assert dsm.save_mixture is mixture_io.save and dsm.load_mixture is mixture_io.load
