"""The guide lab on a real host, second reading (issue 29): what a kubeadm 1.18 + flannel
v0.14.0 on CentOS 7 expert still finds, one test per fix, each failing on the code before it.
(Item 1, nginx without `ip`: tests/unit/test_k8s_driver.py and test_parse.py; item 2, the labs'
networks: test_shipped_labs.py; item 11, the preflight's pins: test_preflight_pins.py.)"""

from __future__ import annotations

from pathlib import Path

from lab.model.labfile import load_lab
from provision import el7
from provision.common import SWAP, fstab_without_swap

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
PLANE = GUIDE.node("k8s-master")
WORKER = GUIDE.node("k8s-node1")
K8S = GUIDE.kubernetes
assert K8S is not None


def shown(commands: tuple[el7.Command, ...]) -> list[str]:
    return [" ".join(c.argv) for c in commands]


# --- 10. the dry run starts from the centos/7 2004.01 box: one xfs partition, a /swapfile --


def test_the_dry_runs_centos_7_node_is_the_boxs_one_xfs_partition_and_its_swap_file() -> None:
    fresh = SWAP.fresh(GUIDE, WORKER)
    assert fresh.active == ("/swapfile",)
    lines = [line.split() for line in fresh.fstab.splitlines() if line and line[0] != "#"]
    assert lines == [
        ["UUID=1c419d6c-5064-4a2b-953c-05b2c67edb15", "/", "xfs", "defaults", "0", "0"],
        ["/swapfile", "none", "swap", "defaults", "0", "0"],
    ]
    assert "/dev/mapper" not in fresh.fstab, "the box has no LVM"
    plan = SWAP.plan(GUIDE, WORKER, fresh)
    assert plan[0].argv == ("swapoff", "-a")
    assert plan[1].stdin == fstab_without_swap(fresh.fstab)
    assert "\n#/swapfile none swap defaults 0 0\n" in (plan[1].stdin or "")
