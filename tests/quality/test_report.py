"""``normcore report``: a self-contained HTML page that headless Chromium renders, not blank."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from normcore.artifact import load_artifact
from normcore.cli import main
from normcore.quality.checks import expected_ranges
from quality.quality_support import FEATURES, quality_table

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page(fitted, tmp_path_factory):
    """A report on a shifted sample, with its drift report."""
    root = tmp_path_factory.mktemp("report")
    shifted = quality_table(2_000, seed=9, shift=0.5)
    pq.write_table(shifted, root / "shifted.parquet")
    assert (
        main(
            [
                "drift",
                str(root / "shifted.parquet"),
                "--artifact",
                str(fitted.artifact),
                "--report",
                str(root / "drift"),
            ]
        )
        == 1
    )
    output = root / "out" / "report.html"
    argv = ["report", str(root / "shifted.parquet"), "--artifact", str(fitted.artifact), "--output", str(output)]
    assert main([*argv, "--drift", str(root / "drift")]) == 0
    return root, shifted, output


def test_page_is_self_contained_and_complete(fitted, page):
    root, shifted, output = page
    text = output.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text)
    assert text.count('src="data:image/png;base64,') == len(FEATURES)
    for feature in FEATURES:
        assert f'<h2 id="{feature["name"]}">' in text
    assert "drift (" in text and "mean shift" in text


def test_page_reports_the_conformity_numpy_counts(fitted, page):
    _, shifted, output = page
    artifact = load_artifact(fitted.artifact)
    from normcore import Normalizer

    normalized = Normalizer.from_artifact(artifact).transform(shifted)
    inside = total = 0
    for name, (low, high) in expected_ranges(artifact).items():
        values = normalized.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        values = values[~np.isnan(values)]
        total += values.size
        inside += int(np.count_nonzero((values >= low) & (values <= high)))
    assert inside < total
    assert f"<b>{100 * inside / total:.2f}%</b> ({inside} of {total} normalized values" in output.read_text()


def test_chromium_renders_a_page_that_is_not_blank(page, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed and could not be: `make test` installs it with apt-get")
    _, _, output = page
    screenshot = tmp_path / "page.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--screenshot={screenshot}",
        "--window-size=1200,1600",
        output.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread

    pixels = imread(screenshot)[..., :3]
    ink = np.any(pixels < 0.9, axis=-1)  # anything clearly darker than white
    assert pixels.shape[:2] == (1600, 1200)
    assert 0.02 < ink.mean() < 0.9
    # The plots are there: the histograms' orange bars of "after" are visible.
    orange = (pixels[..., 0] > 0.75) & (pixels[..., 1] > 0.4) & (pixels[..., 1] < 0.65) & (pixels[..., 2] < 0.35)
    assert orange.sum() > 2_000


def test_report_of_the_fitted_data_is_fully_conforming(fitted, tmp_path, capsys):
    output = tmp_path / "fit.html"
    assert main(["report", str(fitted.raw), "--artifact", str(fitted.artifact), "--output", str(output)]) == 0
    rows = ds.dataset(fitted.raw).count_rows()
    assert f"({rows} rows)" in output.read_text()
    assert "input range conformity: <b>100.00%</b>" in output.read_text()
    assert capsys.readouterr().out.startswith(f"report: {output} (")


def test_workers_give_the_same_page(fitted, tmp_path):
    """Both passes read the input's fragments (three files) on threads and merge the shares
    in fragment order: the page of one worker and of three is the same, histograms and
    statistics included, but for the time it was made."""
    pages = []
    for workers in ("1", "3"):
        output = tmp_path / f"report-{workers}.html"
        argv = ["report", str(fitted.raw), "--artifact", str(fitted.artifact), "--output", str(output)]
        assert main([*argv, "--workers", workers, "--batch-size", "128"]) == 0
        pages.append(re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<time>", output.read_text()))
    assert len(ds.dataset(fitted.raw).files) == 3
    assert pages[0] == pages[1]
    assert pages[0].count('src="data:image/png;base64,') == len(FEATURES)


def test_histogram_shares_merge_to_the_counts_of_one_pass():
    """Per-fragment histograms merged equal one histogram fed every batch, and NumPy's."""
    from normcore.quality.report import BINS, _Histograms

    rng = np.random.default_rng(4)
    table = pa.table({"x": np.concatenate([rng.normal(size=3000), [np.nan, 50.0, -50.0]])})
    edges = {"x": np.linspace(-3.0, 3.0, BINS + 1)}
    whole, merged = _Histograms(edges), _Histograms(edges)
    for batch in table.to_batches(max_chunksize=700):
        whole.add(batch)
        share = _Histograms(edges)
        share.add(batch)
        merged.merge(share)
    values = table.column("x").to_numpy()
    finite = values[np.isfinite(values)]
    reference, _ = np.histogram(np.clip(finite, -3.0, 3.0), bins=edges["x"])
    assert whole.counts["x"].tolist() == merged.counts["x"].tolist() == reference.tolist()
    assert whole.tails["x"] == merged.tails["x"] == [int((finite < -3.0).sum()), int((finite > 3.0).sum())]
