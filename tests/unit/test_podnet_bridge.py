"""The node's CNI conflist, as the backend renders it: refused for a backend that installs its
own (flannel's DaemonSet writes 10-flannel.conflist on the guide's hosts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.model.labfile import load_lab
from lab.podnet.bridge import render_cni_conflist

ROOT = Path(__file__).resolve().parents[2]


def test_a_backend_that_installs_its_own_cni_config_gets_none_rendered() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    with pytest.raises(ValueError, match=r"^lab guide-centos7: ") as refused:
        render_cni_conflist(guide, guide.nodes[0])
    assert str(refused.value) == (
        f"lab guide-centos7: the {guide.pod_network.driver} backend installs its own CNI config"
    )
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    assert render_cni_conflist(ci, ci.nodes[0])["plugins"][0]["type"] == "bridge"
