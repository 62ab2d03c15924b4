"""The two builders the OS profiles call while they are imported (so mutmut only reaches them
through these direct calls: tests/unit/test_mutation_scope.py)."""

from __future__ import annotations

from lab.hosts import compat
from lab.hosts.compat import BY_CNI_DRIVER, Tool, cni_plugins, tools_table
from lab.hosts.os import debian12, el7


def test_the_cni_plugins_rows_are_the_four_plugins_and_flannel_only_with_kubernetes_cni() -> None:
    assert cni_plugins("/usr/lib/cni", "containernetworking-plugins", "cnp", "box") == [
        (
            f"/usr/lib/cni/{p}",
            "containernetworking-plugins",
            "cnp",
            f"/usr/lib/cni/{p}",
            "box",
            BY_CNI_DRIVER,
        )
        for p in ("bridge", "host-local", "portmap", "loopback")
    ]
    rows = cni_plugins("/opt/cni/bin", "kubernetes-cni", "kubernetes-cni", "provisioning")
    assert [r[0] for r in rows] == [
        "/opt/cni/bin/bridge",
        "/opt/cni/bin/host-local",
        "/opt/cni/bin/portmap",
        "/opt/cni/bin/loopback",
        "/opt/cni/bin/flannel",
    ]
    assert all(r[3] == r[0] for r in rows)  # each plugin lives at its own name
    assert {(r[1], r[2], r[4], r[5]) for r in rows} == {
        ("kubernetes-cni", "kubernetes-cni", "provisioning", BY_CNI_DRIVER)
    }


def test_the_tools_table_is_keyed_by_each_rows_name_and_keeps_the_last_of_a_name() -> None:
    rows: list[compat.Row] = [
        ("ip", "iproute2", "iproute2", "/usr/bin/ip", "box", "everyone"),
        ("tc", "iproute2", "iproute2", "/usr/sbin/tc", "provisioning", "faults"),
        ("ip", "iproute2", "iproute", "/sbin/ip", "box", "diagnostics"),
    ]
    assert tools_table(rows) == {
        "ip": Tool("ip", "iproute2", "iproute", "/sbin/ip", "box", "diagnostics"),
        "tc": Tool("tc", "iproute2", "iproute2", "/usr/sbin/tc", "provisioning", "faults"),
    }
    assert tools_table([]) == {}


def test_the_profiles_columns_hold_their_cni_plugins_where_the_family_installs_them() -> None:
    deb = debian12.TOOLS["/usr/lib/cni/bridge"]
    assert (deb.package, deb.source) == ("containernetworking-plugins", "provisioning")
    assert "/usr/lib/cni/flannel" not in debian12.TOOLS
    assert el7.TOOLS["/opt/cni/bin/flannel"].path == "/opt/cni/bin/flannel"
