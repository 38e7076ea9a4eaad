"""The Snakemake report of the tiny run holds every figure, and renders in a real browser when one is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile

import pytest

from tests.workflow.conftest import ROOT, snakemake

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def report(dag_run):
    result = snakemake(dag_run, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-4000:]
    return dag_run / "report.html"


def test_every_figure_exists_is_non_empty_and_is_in_the_report(dag_run, report):
    html = report.read_text(errors="replace")
    figures = sorted((dag_run / "results").rglob("*.png"))
    assert figures, "the tiny run made no figures"
    for figure in figures:
        assert figure.stat().st_size > 2000, f"{figure} is (nearly) empty"
        assert figure.name in html, f"{figure.relative_to(dag_run)} is not registered in the report"
    assert "features.html" in html, "the feature table is not in the report"
    assert "planted ranking" in html, "the landing page (results/summary.rst) is not in the report"


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium to run this check)")
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'p1'}", f"--screenshot={shot}", report.as_uri()],
        check=True,
        capture_output=True,
        timeout=300,  # a hang guard for Chromium
    )
    from PIL import Image

    low, high = Image.open(shot).convert("L").getextrema()
    assert high - low > 50, "the rendered report is blank"
    dom = subprocess.run(
        [*flags, f"--user-data-dir={tmp_path / 'p2'}", "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard for Chromium
    )
    categories = set(
        re.findall(r'category="([^"]+)"', "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk")))
    )
    for name in ("Workflow", "Statistics", *categories):
        assert name in dom.stdout, f"'{name}' is missing from the rendered report"


def test_report_zip_holds_the_html_and_every_figure(dag_run):
    """`snakemake --report report.zip` (the workflow catalog's form): one archive with the report and its files."""
    result = snakemake(dag_run, "--report", "report.zip")
    assert result.returncode == 0, result.stderr[-4000:]
    with zipfile.ZipFile(dag_run / "report.zip") as archive:
        assert archive.testzip() is None  # every member's CRC checks
        names = archive.namelist()
        (html,) = [name for name in names if name.endswith("report.html")]
        assert "planted ranking" in archive.read(html).decode(errors="replace")
    members = "\n".join(names)
    for figure in sorted((dag_run / "results").rglob("*.png")):
        assert figure.name in members, f"{figure.relative_to(dag_run)} is not in report.zip"
