"""compare with the learned weightings (issue 15 item 6): the learned/exact c* ratio against
a hand computation, the figure, table and findings written only when a learned weighting
ran, the end-metric tables with standard errors, and bad input. Fake sweep results (no
training) except the slow end-to-end run."""

import json

import numpy as np
import pytest

from dsmtheory import train as T
from dsmtheory.cli import compare, main

# the seven weightings of issue 15 item 6 (σ², EDM, exact c*, EDM2-learned, online c*,
# Min-SNR, Soft-Min-SNR)
ISSUE_SEVEN = ("simple", "edm", "c_star", "edm2_learned", "online_c_star", "min_snr",
               "soft_min_snr")  # fmt: skip


def test_default_weightings_hold_the_seven_and_learned_matches_train():
    assert compare.LEARNED == T.STATEFUL_WEIGHTINGS
    assert set(ISSUE_SEVEN) <= set(compare.WEIGHTINGS)
    s = compare.settings(None, quick=True)  # every default name resolves for the ring
    assert s.weightings == compare.WEIGHTINGS


def _fake_sweep(weightings, mult_last, *, seeds=2, fisher=1.0):
    """A SweepResult-like object: configs seed-major, 1 capacity, 3 checkpoints, 3 bins."""
    configs = [dict(seed=s, weighting=w, capacity=25, width=3, num_params=26)
               for s in range(seeds) for w in weightings]  # fmt: skip
    n, c, b = len(configs), 3, 3
    mult = np.ones((n, c, b))
    for i, cf in enumerate(configs):
        if cf["weighting"] in mult_last:
            mult[i, -1] = mult_last[cf["weighting"]][cf["seed"]]
    rng = np.random.default_rng(0)
    arr = lambda *shape: rng.uniform(0.5, 1.5, shape)  # noqa: E731
    return T.SweepResult(
        configs=configs,
        loss=arr(n, 4),
        checkpoint_steps=np.array([0, 2, 4]),
        lam_edges=np.array([-1.0, 1.0, 3.0, 5.0]),  # centres 0, 2, 4
        sigma_centers=np.exp(-0.5 * np.array([0.0, 2.0, 4.0])),
        energy_distance=arr(n, c),
        grad_std=arr(n, c, b),
        fisher=np.full((n, c, b), fisher),
        fisher_se=arr(n, c, b) * 0.01,
        fisher_total=arr(n, c),
        fisher_total_se=arr(n, c) * 0.01,
        fisher_total_sigma2=arr(n, c),
        fisher_total_sigma2_se=arr(n, c) * 0.01,
        fisher_relative=arr(n, c, b),
        fisher_relative_se=arr(n, c, b) * 0.01,
        timings={"total_s": 1.0},
        final_state=None,
        multiplier=mult,
    )


def test_learned_ratios_against_a_hand_computation():
    c_star, c_se = np.array([2.0, 4.0, 8.0]), np.array([0.0, 0.4, 0.0])
    sweep = _fake_sweep(["simple", "edm2_learned"],
                        {"edm2_learned": [[1.0, 4.0, 8.0], [3.0, 4.0, 16.0]],
                         "simple": [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]})  # fmt: skip
    lr = compare.learned_ratios(sweep, c_star, c_se, dim=2)
    assert lr["weightings"] == ["edm2_learned"] and lr["capacities"] == [25]
    assert lr["seeds"].tolist() == [[2]]
    # per seed r = [0.5, 1, 1] and [1.5, 1, 2]: mean [1, 1, 1.5]; seed se = |a - b| / 2
    np.testing.assert_allclose(lr["ratio"][0, 0, -1], [1.0, 1.0, 1.5], rtol=1e-12)
    # bin 1: no seed spread, c* has 10 % relative stderr -> se = 1.0 * 0.1
    np.testing.assert_allclose(lr["ratio_se"][0, 0, -1], [0.5, 0.1, 0.5], rtol=1e-12)
    # normalised: each seed's curve over its geometric mean over the bins
    g0, g1 = 0.5 ** (1 / 3), (1.5 * 2.0) ** (1 / 3)
    want = 0.5 * (np.array([0.5, 1, 1]) / g0 + np.array([1.5, 1, 2]) / g1)
    np.testing.assert_allclose(lr["normalised"][0, 0, -1], want, rtol=1e-12)
    # FD prediction: d_eff = D / c* = [1, 0.5, 0.25], sigma^2 = e^(-lam), FD = 1
    d = np.array([1.0, 0.5, 0.25])
    s2 = np.exp(-np.array([0.0, 2.0, 4.0]))
    np.testing.assert_allclose(lr["predicted"][0, 0, -1], d / (d + s2), rtol=1e-12)
    np.testing.assert_allclose(lr["predicted_se"][0, 0, -1], 0.0, atol=1e-15)
    # the earlier checkpoints: multiplier 1 -> ratio 1 / c*
    np.testing.assert_allclose(lr["ratio"][0, 0, 0], 1.0 / c_star, rtol=1e-12)
    assert compare.learned_ratios(_fake_sweep(["simple"], {}), c_star, c_se, dim=2) is None


def _result(weightings, learned: bool):
    s = compare.settings(None, quick=True, steps=4, seeds=2, capacities=[25],
                         weightings=weightings, progress=False)  # fmt: skip
    mult = {w: [[1.0, 2.0, 3.0], [1.2, 2.2, 3.3]] for w in weightings}
    exact = (np.array([0.9, 2.0, 2.5]), np.zeros(3)) if learned else None
    return compare.Result(s, _fake_sweep(list(weightings), mult), 1.0, exact)


def test_learned_files_written_only_with_a_learned_weighting(tmp_path, monkeypatch):
    import dsmtheory._io as io

    def no_render(fig, path, dpi=150):  # the figures are built, not rendered (slow tier does)
        assert fig.axes, path
        return io.atomic_write_bytes(path, b"png")

    monkeypatch.setattr(io, "save_figure", no_render)
    with_l = _result(("simple", "online_c_star"), learned=True)
    files = {p.name for p in compare.write(with_l, tmp_path / "a")}
    assert set(compare.LEARNED_FILES) <= files
    assert set(compare.FIGURES + compare.TABLES) <= files
    rows = (tmp_path / "a" / "learned_vs_exact_c_star.csv").read_text().splitlines()
    assert rows[0].startswith("weighting,capacity,sigma,lam,seeds,c_star,c_star_se")
    assert len(rows) == 1 + 3 and all(r.startswith("online_c_star,25,") for r in rows[1:])
    found = json.loads((tmp_path / "a" / "findings.json").read_text())
    (table,) = found["tables"]
    assert [r[0] for r in table["rows"]] == ["online_c_star"]
    # per seed r = [1/0.9, 1, 1.2] and [1.2/0.9, 1.1, 1.32]: mean [1.222, 1.05, 1.26]
    assert table["rows"][0][3] == "1 of 3" and table["rows"][0][2].startswith("1.260 ± ")
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["learned_vs_exact"]["weightings"] == ["online_c_star"]
    summary = compare.summary(with_l)
    assert "wrote 6 figures and 7 tables" in summary and "online_c_star: learned/exact" in summary

    without = _result(("simple", "edm"), learned=False)
    files = {p.name for p in compare.write(without, tmp_path / "b")}
    assert not set(compare.LEARNED_FILES) & files
    assert set(compare.FIGURES + compare.TABLES) <= files
    assert compare.findings(without) is None
    assert "wrote 5 figures and 6 tables" in compare.summary(without)


def test_end_metric_tables_have_the_seed_standard_errors():
    r = _result(("simple", "edm"), learned=False)
    tables = compare._tables(r)
    head, rows = tables["end_metrics.csv"]
    assert [row[0] for row in rows] == ["simple", "edm"] and all(row[3] == 2 for row in rows)
    res = r.sweep
    idx = [0, 2]  # "simple", seeds 0 and 1 (seed-major configs)
    ed = res.energy_distance[idx, -1]
    got = dict(zip(head, rows[0], strict=True))
    assert got["energy_distance"] == pytest.approx(ed.mean(), rel=1e-12)
    assert got["energy_distance_se"] == pytest.approx(abs(ed[0] - ed[1]) / 2, rel=1e-12)
    fr = res.fisher_relative[idx, -1].mean(axis=-1)
    assert got["fisher_relative_mean_se"] == pytest.approx(abs(fr[0] - fr[1]) / 2, rel=1e-12)
    head, rows = tables["per_sigma_mean.csv"]
    got = dict(zip(head, rows[1], strict=True))  # "simple", bin 1
    g = res.grad_std[idx, -1, 1]
    assert got["grad_std"] == pytest.approx(g.mean(), rel=1e-12)
    assert got["grad_std_se"] == pytest.approx(abs(g[0] - g[1]) / 2, rel=1e-12)


def test_an_unknown_weighting_beside_the_learned_ones_exits_2(tmp_path, capsys):
    argv = ["compare", "--out", str(tmp_path / "x"), "--quick", "--weightings",
            "edm2_learned", "online_c_star", "nope"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown weighting 'nope'" in err and err.count("\n") == 1, err
    assert not (tmp_path / "x" / "results.json").exists()


@pytest.mark.slow
def test_compare_with_every_weighting_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--out", str(out), "--quick", "--steps", "4", "--seeds", "2",
            "--batch-size", "8", "--capacities", "25", "--no-progress",
            "--weightings", *compare.WEIGHTINGS]  # fmt: skip
    assert main(argv) == 0
    for name in compare.FIGURES + compare.TABLES + compare.LEARNED_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    assert len(res["configs"]) == 2 * len(compare.WEIGHTINGS)
    lv = res["learned_vs_exact"]
    assert lv["weightings"] == list(compare.LEARNED)
    ratio = np.asarray(lv["ratio"], dtype=float)
    assert ratio.shape == (2, 1, 3, 8) and np.all(np.isfinite(ratio)) and np.all(ratio > 0)
    # the ring's c* is the deterministic rule (stderr 0 up to its tolerance), >= 1
    c = np.asarray(res["exact_c_star"])
    assert np.all(c >= 1.0 - 1e-9) and np.all(np.asarray(res["exact_c_star_se"]) < 1e-6 * c)
    # the applied multiplier over c* is the ratio (the table's own columns agree)
    mult = np.asarray(res["multiplier"], dtype=float)
    i = [k for k, cf in enumerate(res["configs"]) if cf["weighting"] == "online_c_star"]
    np.testing.assert_allclose(ratio[1, 0], np.mean(mult[i] / c, axis=0), rtol=1e-6)
    end = (out / "end_metrics.csv").read_text().splitlines()
    assert len(end) == 1 + len(compare.WEIGHTINGS)
    assert "online_c_star: learned/exact c*" in capsys.readouterr().out


def test_reproduce_report_shows_the_learned_figure_table_and_finding(tmp_path, monkeypatch):
    import dsmtheory._io as io
    from dsmtheory.cli import reproduce
    from dsmtheory.cli.report import SectionResult, render_html, render_markdown

    monkeypatch.setattr(io, "save_figure", lambda fig, path, dpi=150: io.atomic_write_bytes(
        path, b"png"))  # fmt: skip
    files = compare.write(_result(("simple", "edm2_learned"), learned=True), tmp_path / "compare")
    rel = [str(p.relative_to(tmp_path)) for p in files]
    title = reproduce.SECTIONS["compare"][1]
    r = SectionResult("compare", title, "ok", files=rel)
    md = render_markdown(tmp_path, [r], {"mode": "quick"})
    assert "![compare/learned_vs_exact_c_star.png](compare/learned_vs_exact_c_star.png)" in md
    assert "Table [`compare/learned_vs_exact_c_star.csv`]" in md
    assert "Table [`compare/end_metrics.csv`]" in md
    assert md.index("## Findings") < md.index("### Training: learned vs exact c*") < md.index(
        "## Summary")  # fmt: skip
    assert "| edm2_learned | " in md
    page = render_html(tmp_path, [r], {"mode": "quick"})
    assert "src='compare/learned_vs_exact_c_star.png'" in page
    assert "<td>edm2_learned</td>" in page
    assert "learned" in reproduce.SECTIONS["compare"][2]
