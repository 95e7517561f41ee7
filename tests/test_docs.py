"""The rendered `default` report committed in docs/ (what readers on the repository host see) matches the
committed figures/ and notebooks; report.publish writes it from a finished report."""
import json
from pathlib import Path

import pytest

from nbkernels import report

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
NAMES = report.available_notebooks()


def test_docs_hold_a_page_an_executed_notebook_and_the_figures_of_every_notebook():
    assert (DOCS / "index.html").exists() and (DOCS / "README.md").exists(), "docs/ holds no published report"
    for name in NAMES:
        assert (DOCS / f"{name}.html").exists(), f"docs/{name}.html missing: run `make report`"
        assert (DOCS / "executed" / f"{name}.ipynb").exists(), f"docs/executed/{name}.ipynb missing"


@pytest.mark.parametrize("name", NAMES, ids=[n[:2] for n in NAMES])
def test_the_published_report_is_the_committed_figures(name):
    committed, published = REPO / "figures" / name, DOCS / "figures" / name
    assert (published / "verdict.json").read_bytes() == (committed / "verdict.json").read_bytes(), (
        f"docs/figures/{name}/verdict.json differs from figures/{name}/verdict.json: `make report` publishes both")
    pngs = sorted(p.name for p in committed.glob("*.png"))
    assert pngs == sorted(p.name for p in published.glob("*.png"))
    for png in pngs:
        assert (published / png).read_bytes() == (committed / png).read_bytes(), f"docs/figures/{name}/{png} is stale"
    verdict = json.loads((committed / "verdict.json").read_text())
    nb = json.loads((DOCS / "executed" / f"{name}.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] if "verdict" in c["metadata"].get("tags", [])
                      for o in c.get("outputs", []))
    if verdict["reproduced"] is not None:
        assert printed.strip() == f"finding reproduced: {'yes' if verdict['reproduced'] else 'no'}", (
            f"{name}: the executed notebook printed {printed!r}, verdict.json says {verdict['reproduced']}")
    assert nb["metadata"]["papermill"]["parameters"] == {"preset": "default"}
    assert "/work/" not in json.dumps(nb) and str(Path.home()) + "/" not in json.dumps(nb)
    index = (DOCS / "index.html").read_text()
    card = index.split(f'id="{name}"', 1)[1].split("</section>", 1)[0]
    want = {None: "data tour", True: ">reproduced<", False: "not reproduced"}[verdict["reproduced"]]
    assert want in card, f"{name}: the published index does not say {want!r}"


def test_the_repositorys_front_page_links_the_published_report():
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:25])
    assert "docs/README.md" in first_screen


def test_publish_writes_a_finished_report_into_docs(tmp_path, monkeypatch):
    out = tmp_path / "report"
    (out / "executed").mkdir(parents=True)
    (out / "figures" / "02_x").mkdir(parents=True)
    (out / "index.html").write_text("<html>index</html>")
    (out / "02_x.html").write_text("<html>page</html>")
    (out / "executed" / "02_x.ipynb").write_text("{}")
    (out / "figures" / "02_x" / "a.png").write_bytes(b"\x89PNG")
    (out / "figures" / "02_x" / "a.svg").write_text("<svg/>")
    (out / "figures" / "02_x" / "verdict.json").write_text(json.dumps(dict(
        claim="NNGP beats NTK", reproduced=True, figure="a", key=[0], dataset="CIFAR-10 · 8×8×3",
        numbers=[dict(what="NNGP − NTK", ours="+0.6 ± 0.1", paper="> 0")], tests=[], caveats=[])))
    (out / "summary.json").write_text(json.dumps(dict(preset="default", wall_s=100.0, results=[
        dict(name="02_x", state="done", wall_s=50.0, error=None, reproduced=True)])))
    docs = tmp_path / "docs"
    (docs / "old").mkdir(parents=True)                      # what belongs to no notebook goes
    (docs / "figures" / "00_y").mkdir(parents=True)         # a notebook published earlier stays, in the index too
    (docs / "figures" / "00_y" / "verdict.json").write_text(json.dumps(dict(
        claim="the data", reproduced=None, figure="b", key=[], dataset="CIFAR-10", numbers=[], tests=[], caveats=[])))
    (docs / "00_y.html").write_text("<html>tour</html>")
    monkeypatch.setattr(report, "available_notebooks", lambda: ["00_y", "02_x"])
    md = report.publish(out, docs).read_text()
    assert sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*") if p.is_file()) == [
        "00_y.html", "02_x.html", "README.md", "executed/02_x.ipynb", "figures/00_y/verdict.json", "figures/02_x/a.png",
        "figures/02_x/verdict.json", "index.html", "summary.json"]
    assert "**1 of 1**" in md and "## 02_x: **reproduced**" in md and "![02_x: a](figures/02_x/a.png)" in md
    assert "## 00_y: data tour" in md and 'id="00_y"' in (docs / "index.html").read_text()
    assert "[executed notebook](executed/02_x.ipynb)" in md and "| NNGP − NTK | +0.6 ± 0.1 | > 0 |" in md
    summary = json.loads((out / "summary.json").read_text())
    summary["results"][0]["error"] = "boom"
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="failed notebooks"):
        report.publish(out, docs)
