"""Real-browser tests: the rendered report, and a notebook's widget in JupyterLab (headless Chromium)."""
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

import lab_server

REPO = Path(__file__).resolve().parent.parent


def test_report_index_renders(browser, tmp_path, monkeypatch):
    """The report at `ci` for one finding (08, the quickest): the index loads, every image and link resolves, the
    main figure is readable, the decisive test is shown and no table cell is squeezed; the screenshot is kept
    (in $NBKERNELS_FIGURES)."""
    monkeypatch.setenv("NBKERNELS_PRESET", "ci")
    from nbkernels import report
    out = tmp_path / "report"
    index = report.run("ci", ["08"], jobs=1, out=out)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(index.as_uri())
    assert "nbkernels" in page.title().lower() or page.locator("table").count() > 0
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.src, e.complete && e.naturalWidth > 0])")
    assert images, "the index shows no thumbnails"
    assert all(ok for _, ok in images), f"images that did not load: {[s for s, ok in images if not ok]}"
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    assert links, "the index links to nothing"
    for href in links:
        if href.startswith("file://"):
            assert Path(urllib.request.url2pathname(href[7:].split("#")[0])).exists(), f"broken link {href}"
    shots = Path(os.environ.get("NBKERNELS_FIGURES", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "report_index.png"), full_page=True)
    assert page.locator(".yes").count() == 1, "notebook 08's verdict is not shown as reproduced"
    # readable at a glance: the claim, the deciding numbers and test, and the main figure at a readable size
    assert page.locator(".finding .claim").inner_text().startswith("Low floating-point precision")
    assert page.locator("table.tests tr").count() >= 3, "the decisive test and its parts are not on the index"
    assert page.locator("table.key tr").count() >= 2, "no deciding numbers on the index"
    # [displayed width, design width (the size its fonts were made for), width of the finding's card]
    shown = page.eval_on_selector_all("img.main", """els => els.map(e => [e.getBoundingClientRect().width,
        Number(e.getAttribute('width')), e.closest('.finding').getBoundingClientRect().width])""")
    assert len(shown) == 1, shown
    displayed, design, card = shown[0]
    assert displayed >= 500 and displayed >= 0.95 * min(design, card), (
        f"the main figure is displayed {displayed:.0f} px wide; its design width is {design} px (card {card:.0f} px)")
    cells = page.eval_on_selector_all(
        "td", "els => els.map(e => [e.textContent.slice(0, 30), e.getBoundingClientRect().width, e.scrollWidth, e.clientWidth])")
    squeezed = [c for c in cells if c[1] < 80 or c[2] > c[3] + 1]
    assert not squeezed, f"table cells squeezed below 80 px or overflowing: {squeezed}"
    page.close()


@pytest.fixture
def lab(tmp_path):
    """`jupyter lab` on localhost with a token, serving a copy of notebook 00 (Run All modifies it)."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "00_data_tour.ipynb", root)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(NBKERNELS_PRESET="ci", NBKERNELS_FIGURES=str(tmp_path / "figures"))
    with lab_server.running(env=env, extra=[f"--ServerApp.root_dir={root}",
                                            f"--LabApp.user_settings_dir={tmp_path / 'settings'}"]) as base:
        yield f"{base}/lab/tree/00_data_tour.ipynb?token=nbkernels-test"


def test_jupyterlab_widget_changes_figure(browser, lab):
    """Open notebook 00 in JupyterLab, Run All, move the ε slider: the figure is redrawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(lab)
    # the kernel is ready only when the indicator is idle AND a kernel name is shown (see shared notes)
    page.wait_for_function(
        """() => {
            const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const name = document.querySelector('.jp-Toolbar-kernelName');
            return ind && ind.getAttribute('data-status') === 'idle' && name && !name.textContent.includes('No Kernel');
        }""", timeout=120_000)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    img_sel = ".widget-interact .widget-output .jp-OutputArea-output img"
    page.wait_for_selector(img_sel, timeout=300_000)
    before = page.get_attribute(img_sel, "src")
    handle = page.locator(".widget-slider .noUi-handle[role=slider]").first
    value = handle.get_attribute("aria-valuenow")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
        arg=[img_sel, before], timeout=60_000)
    assert handle.get_attribute("aria-valuenow") != value
    page.close()
