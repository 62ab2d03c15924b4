"""Building a family's column: the CNI plugins each family's package brings (flannel's only in
el7's kubernetes-cni) and the table keyed by the tool's name as the harness writes it."""

from __future__ import annotations

from lab.hosts import compat


def test_containernetworking_plugins_bring_the_four_reference_plugins() -> None:
    rows = compat.cni_plugins(
        "/usr/lib/cni", compat.CNI_PLUGINS_PACKAGE, compat.CNI_PLUGINS_PACKAGE, "provisioning"
    )
    assert rows == [
        (
            f"/usr/lib/cni/{p}",
            "containernetworking-plugins",
            "containernetworking-plugins",
            f"/usr/lib/cni/{p}",
            "provisioning",
            "the CNI driver",
        )
        for p in ("bridge", "host-local", "portmap", "loopback")
    ]


def test_kubernetes_cni_brings_flannel_after_the_four() -> None:
    rows = compat.cni_plugins("/opt/cni/bin", "kubernetes-cni", "kubernetes-cni", "box")
    assert [row[0] for row in rows] == [
        "/opt/cni/bin/bridge",
        "/opt/cni/bin/host-local",
        "/opt/cni/bin/portmap",
        "/opt/cni/bin/loopback",
        "/opt/cni/bin/flannel",
    ]
    assert {row[1:3] for row in rows} == {("kubernetes-cni", "kubernetes-cni")}
    assert {row[4] for row in rows} == {"box"}


def test_the_tools_table_is_keyed_by_the_name_the_harness_writes() -> None:
    table = compat.tools_table(
        [
            ("ip", "iproute2", "iproute2", "/usr/sbin/ip", "box", "everyone"),
            ("conntrack", "conntrack-tools", "conntrack", "/usr/sbin/conntrack", "box", "faults"),
        ]
    )
    assert table == {
        "ip": compat.Tool("ip", "iproute2", "iproute2", "/usr/sbin/ip", "box", "everyone"),
        "conntrack": compat.Tool(
            "conntrack", "conntrack-tools", "conntrack", "/usr/sbin/conntrack", "box", "faults"
        ),
    }
