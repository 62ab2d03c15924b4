"""Reports: connectivity matrices as text and as PNG heatmaps (writes files)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SYMBOLS = {
    ".": (0, "as expected"),
    "x": (1, "unreachable, as expected"),
    "N": (2, "NAT: wrong source"),
    "X": (3, "unreachable"),
    "R": (4, "reachable, should not be"),
    "?": (5, "not probed"),
    " ": (6, "not in table"),
    "W": (7, "another pod answered"),
    "S": (8, "needed a SYN retransmit"),
}
COLORS = [
    "#2e9e44",
    "#9e9e9e",
    "#f0a020",
    "#d62728",
    "#6a3d9a",
    "#bcbcbc",
    "#ffffff",
    "#e377c2",
    "#17becf",
]


def matrix_dir(artifacts: Path) -> Path:
    return artifacts / "matrices"


def write_matrix(
    artifacts: Path, slug: str, text: str, data: str
) -> None:  # pragma: no mutate block (I/O)
    out = matrix_dir(artifacts)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{slug}.txt").write_text(text + "\n")
    (out / f"{slug}.json").write_text(data)


def write_ledger(
    artifacts: Path, slug: str, text: str, data: str
) -> None:  # pragma: no mutate block (I/O)
    """A fault's disruption ledger (e2e/ledger.py), beside its matrices (not among them: every
    JSON there is a matrix's)."""
    out = artifacts / "ledgers"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{slug}.txt").write_text(text)
    (out / f"{slug}.json").write_text(data)


def short_labels(endpoints: list[dict[str, Any]]) -> list[str]:
    """Names without the run prefix they all share (nl-r1a2b3-gw0-...), plus the address."""
    names = [e["name"] for e in endpoints]
    cut = len(os.path.commonprefix(names)) if len(names) > 1 else 0  # noqa: RUF071 (strings)
    cut = names[0].rfind("-", 0, cut) + 1 if cut else 0
    return [f"{n[cut:]} {e['ip']}" for n, e in zip(names, endpoints, strict=True)]


def render_heatmap(data: dict[str, Any], png: Path) -> Path:  # pragma: no mutate block (I/O)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    sources = [e["name"] for e in data["sources"]]
    targets = [e["name"] for e in data["targets"]]
    symbol = {(c["source"], c["target"]): c["symbol"] for c in data["cells"]}
    grid = [[SYMBOLS[symbol.get((s, t), " ")][0] for t in targets] for s in sources]
    fig, ax = plt.subplots(figsize=(3.5 + 0.45 * len(targets), 2.0 + 0.4 * len(sources)))
    ax.imshow(grid, cmap=ListedColormap(COLORS), vmin=0, vmax=len(COLORS) - 1)
    ax.set_xticks(
        range(len(targets)), short_labels(data["targets"]), rotation=45, ha="right", fontsize=7
    )
    ax.set_yticks(range(len(sources)), short_labels(data["sources"]), fontsize=7)
    for i, s in enumerate(sources):
        for j, t in enumerate(targets):
            sym = symbol.get((s, t), " ")
            if sym.strip():
                ax.text(j, i, sym, ha="center", va="center", fontsize=7, color="black")
    ax.set_title(data["title"], fontsize=9)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    used = sorted({SYMBOLS[v][0] for v in symbol.values()})
    labels = {code: label for code, label in SYMBOLS.values()}
    ax.legend(
        handles=[Patch(color=COLORS[c], label=labels[c]) for c in used],
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        fontsize=7,
    )
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return png


def render_matrices(artifacts: Path) -> list[Path]:  # pragma: no mutate block (I/O)
    """A PNG next to every matrix JSON the run wrote."""
    pngs = []
    for path in sorted(matrix_dir(artifacts).glob("*.json")):
        pngs.append(render_heatmap(json.loads(path.read_text()), path.with_suffix(".png")))
    return pngs
