"""``dsmtheory realdata`` on a 64-D user mixture (one quick command, no compare), and the
report's findings block and whole small tables."""

import json

import numpy as np

import dsmtheory as dsm
from dsmtheory.cli import main, realdata
from dsmtheory.cli.report import SectionResult, render_html, render_markdown

from .test_compare_anyd import _gm64


def test_realdata_on_a_64d_user_mixture(tmp_path, capsys):
    gm = _gm64()
    path = dsm.save_mixture(gm, tmp_path / "m.npz")
    out = tmp_path / "rd"
    argv = ["realdata", "--quick", "--no-compare", "--mixture", str(path), "--out", str(out)]
    assert main(argv) == 0
    assert "c*(0.001)" in capsys.readouterr().out
    meta = json.loads((out / "findings.json").read_text())
    table = meta["tables"][0]
    assert table["header"][:3] == ["mixture", "covariances", "D/d̄"]
    (row,) = table["rows"]  # a file: no clipped variant
    # d̄ = 0.4 · 48 + 0.6 · 64 = 57.6 exactly (16 zero eigenvalues in the first component)
    assert float(row[2]) == float(f"{64 / 57.6:.4g}")
    rows = np.genfromtxt(out / "c_star_deff.csv", delimiter=",", names=True, dtype=None,
                         encoding="utf-8")  # fmt: skip
    c, d = rows["c_star"], rows["d_eff"]
    assert len(c) == 13 and np.all(c >= 1.0) and np.all(d <= 64.0)
    np.testing.assert_allclose(c * d, 64.0, rtol=1e-12)  # d_eff = D / c*
    # low noise: d_eff -> d̄ (within the Monte Carlo error and the σ² bias at σ = 1e-3)
    assert abs(d[0] - 57.6) < 0.5
    assert meta["settings"]["mixtures"][str(path)]["dim"] == 64
    assert len(list(out.glob("c_star_deff_*.png"))) == 1 and (out / "is_densities.png").exists()


def test_report_opens_with_findings_and_shows_small_tables_whole(tmp_path):
    sec = tmp_path / "realdata"
    sec.mkdir()
    (sec / "findings.json").write_text(json.dumps({
        "title": "Realistic data", "tables": [
            {"caption": "c* at a few sigma", "header": ["mixture", "c*(0.1)"],
             "rows": [["digits:10", "1.79 ± 1e-05"]]}]}))  # fmt: skip
    rows = "\n".join(f"p{i},ok" for i in range(41))
    (sec / "proofs.csv").write_text("name,status\n" + rows + "\n")
    r = SectionResult("realdata", "Realistic data", "ok",
                      files=["realdata/findings.json", "realdata/proofs.csv"])  # fmt: skip
    md = render_markdown(tmp_path, [r], {"mode": "quick"})
    assert md.index("## Findings") < md.index("## Summary") < md.index("\n## Realistic data")
    assert "| digits:10 | 1.79 ± 1e-05 |" in md
    assert "(41 rows)" in md and "| p40 | ok |" in md  # shown whole, not cut at 12
    page = render_html(tmp_path, [r], {"mode": "quick"})
    assert page.index("<h2>Findings</h2>") < page.index("<h2>Summary</h2>")
    assert "<td>1.79 ± 1e-05</td>" in page
    assert realdata.REPORT_SIGMAS == (1e-3, 1e-2, 0.1, 1.0)
