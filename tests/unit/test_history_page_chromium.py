"""The history's index and a nightly's page, loaded in a real browser (Debian's headless
Chromium, from file:// only: the pages have no external resource and the test opens no
network address), and read the way a person reads them: the title, "since the last green
run" and its items, a failing check before the passing ones, a skip folded into one line.
Without chromium (scripts/setup-host --test installs it) the test skips and says so."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.history import SinceGreen, since_last_green
from app.history_page import render_index, render_since_green
from app.summary import NightlyReport, StageResult, parse_junit, render_html
from tests.records import check, flows, matrix, run

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Debian's chromium for the headless browser test "
    "(scripts/setup-host --test installs it; or apt-get install chromium)",
)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    content: list[Node | str] = field(default_factory=list)  # in document order

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        """The text a person reads (whitespace folded; the inline elements of these pages)."""
        parts = [c if isinstance(c, str) else c.text() for c in self.content]
        return " ".join("".join(parts).split())

    def walk(self) -> list[Node]:
        return [self, *(n for c in self.content if isinstance(c, Node) for n in c.walk())]

    def find(self, tag: str, cls: str = "", id: str = "") -> list[Node]:
        return [
            n
            for n in self.walk()
            if n.tag == tag
            and (not cls or cls in n.classes)
            and (not id or n.attrs.get("id") == id)
        ]


VOID = {"meta", "br", "img", "link", "input", "hr", "circle", "line", "polyline"}


class DomParser(HTMLParser):
    """Chromium's serialized DOM as a tree."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].content.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].content.append(data)


def dom_of(page: Path, profile: Path) -> Node:
    """The page as Chromium built it (`--dump-dom`), parsed."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<body" in done.stdout, done.stderr[-2000:]
    parser = DomParser()
    parser.feed(done.stdout)
    return parser.root


JUNIT = """<testsuites><testsuite>
<testcase classname="e2e.test_network_model" name="test_mtu[cri-node1-to-node2]" time="0.9"/>
<testcase classname="e2e.test_network_model" name="test_nat[cri]" time="0.4">
  <failure message="1 of 2 cells wrong: cri-node1-p0 -> cri-node2-p0 seen as 10.10.10.11">
  matrix...</failure></testcase>
<testcase classname="e2e.test_kubernetes" name="test_nodes_ready" time="0.0">
  <skipped message="needs a lab with Kubernetes"/></testcase>
<testcase classname="e2e.test_kubernetes" name="test_dns" time="0.0">
  <skipped message="needs a lab with Kubernetes"/></testcase>
<testcase classname="e2e.test_cni_contract" name="test_add[node1]@cni-contract" time="1.2"/>
</testsuite></testsuites>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A history folder with three runs of ci-debian12 (green, green, then a cell failing and
    a check newly skipped) and the third run's page, laid out as the nightly lays them out."""
    root = tmp_path_factory.mktemp("site")
    r1, r2 = run("r1"), run("r2")
    r3 = run(
        "r3",
        passed=False,
        matrices=(matrix({("cri-node1-p0", "cri-node2-p0"): "N"}),),
        checks=(check("test_mtu[cri]", "skipped", "needs ping"), check("test_nat[cri]")),
    )
    records = [r1, r2, r3]
    history = root / "history"
    history.mkdir()
    (history / "index.html").write_text(render_index(records))
    since: SinceGreen = since_last_green(records, r3)
    page = root / "nightly" / r3.run / "summary.html"
    page.parent.mkdir(parents=True)
    report = NightlyReport(
        lab="ci-debian12",
        started="2026-12-03 02:00:00 UTC",
        stages=[StageResult("e2e (parallel)", "failed", 40, 1800, "1 failed", "e2e/pytest.log")],
        cases=parse_junit(JUNIT, "e2e"),
        faults=[
            {
                "fault": "containerd restarted",
                "node": "node2",
                "failed_during": [],
                "wrong_during": [],
                "recovered": True,
                "recovery_s": 1.0,
                "bound_s": 120,
                "ledger": {"summary": asdict(flows(loss_ms=1300, within_budget=False))},
            }
        ],
        drivers=("k8s", "cri", "cni"),
        links={
            "all runs (history)": "../../history/index.html",
            "previous run (passed)": f"../{r2.run}/summary.html",
        },
        since_green="<section id='since-green'><h2>Since the last green run</h2>"
        + render_since_green(since, lambda r: f"../{r.run}/summary.html")
        + "</section>",
    )
    page.write_text(render_html(report))
    profile = root / "chromium-profile"
    return history / "index.html", page, profile


def test_the_index_shows_what_got_worse_since_the_last_green_run_first(
    site: tuple[Path, Path, Path],
) -> None:
    index, _, profile = site
    dom = dom_of(index, profile)
    (title,) = dom.find("head")[0].find("title")
    assert title.text() == "netlab nightly history"
    (since,) = dom.find("section", id="since-green")
    assert since.find("h2")[0].text() == "Since the last green run"
    items = [li.text() for li in since.find("li", cls="finding")]
    assert items == [
        "e2e/pod-to-pod-cri: cri-node1-p0 -> cri-node2-p0: '.' -> 'N' (NAT: wrong source)",
        "e2e/test_network_model.py::test_mtu[cri]: passed -> skipped: needs ping",
    ]
    heads = [h.text() for h in since.find("h4")]
    assert heads == ["Cells that started failing (1)", "Checks newly skipped (1)"]
    runs = since.find("a")
    assert [a.attrs["href"] for a in runs] == [
        "../nightly/ci-debian12-r3/summary.html",
        "../nightly/ci-debian12-r2/summary.html",
    ]
    (lab,) = dom.find("section", cls="lab")
    assert len(lab.find("svg", cls="trend")) >= 5, "a trend chart per stage and per recovery"
    rows = lab.find("table", cls="runs")[0].find("tr")[1:]
    assert [r.find("td")[2].text() for r in rows] == ["FAILED", "PASSED", "PASSED"]


def test_a_run_page_links_back_and_shows_failures_first_and_skips_folded(
    site: tuple[Path, Path, Path],
) -> None:
    _, page, profile = site
    dom = dom_of(page, profile)
    (title,) = dom.find("head")[0].find("title")
    assert title.text() == "netlab nightly ci-debian12 2026-12-03 02:00:00 UTC: FAILED"
    nav = {a.text(): a.attrs["href"] for a in dom.find("nav")[0].find("a")}
    assert nav == {
        "all runs (history)": "../../history/index.html",
        "previous run (passed)": "../ci-debian12-r2/summary.html",
    }
    (since,) = dom.find("section", id="since-green")
    assert len(since.find("li", cls="finding")) == 2
    (checks,) = dom.find("table", cls="checks")
    rows = [r for r in checks.find("tr") if r.classes & {"failed", "passed", "skip-reason"}]
    outcomes = [next(iter(r.classes & {"failed", "passed", "skip-reason"})) for r in rows]
    assert outcomes.index("failed") < outcomes.index("passed"), outcomes
    assert rows[0].find("td")[1].text() == "test_nat[cri]"
    groups = [g.text() for g in checks.find("tr", cls="group")]
    assert groups[0].startswith("e2e/test_network_model.py · driver cri · e2e pass"), groups
    (skips,) = [r for r in rows if "skip-reason" in r.classes]
    assert skips.find("summary")[0].text() == "2 skipped: needs a lab with Kubernetes"
    assert "test_dns, test_nodes_ready" in skips.text()
    (fault,) = [
        r
        for r in dom.find("tr")
        if r.find("td") and r.find("td")[0].text() == "containerd restarted"
    ]
    assert "failed" in fault.classes, "live flows outside the budget fail the fault's row"
    assert fault.find("td")[-1].text().startswith("loss 1300 ms; TCP connections survived 1/1")
    assert fault.find("td")[-1].text().endswith(": OUT OF BUDGET")
    stage_log = [a.attrs["href"] for a in dom.find("a") if a.text() == "e2e/pytest.log"]
    assert stage_log == ["e2e/pytest.log"]


def test_the_pages_load_nothing_from_outside(site: tuple[Path, Path, Path]) -> None:
    for page in site[:2]:
        text = page.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
        assert "<script" not in text
        assert "<link" not in text
        assert str(page.parent.parent) not in text, "no absolute path of the runner"
