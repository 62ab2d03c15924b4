"""The documents inside the cluster's ConfigMaps, field by field: flannel's net-conf.json
(flannel's own defaults, the dual-stack IPv6Network, every malformed field named) wherever
its ConfigMap is, and kubeadm's ClusterConfiguration networking."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.model.strict import DecodeError

DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
FLANNEL = json.loads((DATA / "configmap-kube-flannel-cfg.json").read_text())
KUBEADM = json.loads((DATA / "configmap-kubeadm-config.json").read_text())
NET_CONF = "configmap kube-system/kube-flannel-cfg net-conf.json"
CLUSTER = "configmap kube-system/kubeadm-config ClusterConfiguration"


def netconf(conf: object = None, raw: str | None = None, **top: Any) -> str:
    doc = copy.deepcopy(FLANNEL)
    doc.update(top)
    if conf is not None:
        doc["data"]["net-conf.json"] = json.dumps(conf)
    if raw is not None:
        doc["data"]["net-conf.json"] = raw
    try:
        return repr(k8s.parse_flannel_netconf(json.dumps(doc)))
    except DecodeError as e:
        return f"refused: {e}"


def conf_repr(backend: str, subnet_len: int = 24, v6: str | None = None) -> str:
    six = "None" if v6 is None else f"IPv6Network('{v6}')"
    return (
        f"FlannelNetConf(network=IPv4Network('10.244.0.0/16'), backend_type='{backend}', "
        f"subnet_len={subnet_len}, namespace='kube-system', ipv6_network={six})"
    )


NET = "10.244.0.0/16"


@pytest.mark.parametrize(
    ("conf", "raw", "top", "outcome"),
    [
        ({"Network": NET}, None, {}, conf_repr("udp")),  # flannel's own defaults
        (
            {
                "Network": NET,
                "SubnetLen": 26,
                "Backend": {"Type": "host-gw"},
                "IPv6Network": "fd00::/56",
            },
            None, {}, conf_repr("host-gw", 26, "fd00::/56"),
        ),
        ({"Network": NET, "IPv6Network": "10.0.0.0/8"}, None, {}, conf_repr("udp")),
        (
            {"Network": NET, "IPv6Network": "x"}, None, {},
            f"refused: {NET_CONF}: field IPv6Network = 'x': is not a CIDR ('x' does not appear "
            "to be an IPv4 or IPv6 network)",
        ),
        (
            {"Backend": {"Type": "vxlan"}}, None, {},
            f"refused: {NET_CONF}: field Network: is missing",
        ),
        (
            {"Network": "10.244.0.1/16"}, None, {},
            f"refused: {NET_CONF}: field Network = '10.244.0.1/16': is not an IPv4 CIDR like "
            "10.244.0.0/16 (10.244.0.1/16 has host bits set); did you mean 10.244.0.0/16?",
        ),
        (["x"], None, {}, f"refused: {NET_CONF} = ['x']: must be a JSON object"),
        (
            None, "{x", {},
            f"refused: {NET_CONF}: not JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        pytest.param(
            None, '{"Network": "10.244.0.0/16", "SubnetLen": ' + "2" * 4301 + "}", {},
            f"refused: {NET_CONF}: holds a number too long to read (Exceeds the limit (4300 "
            "digits) for integer string conversion: value has 4301 digits)",
            id="a-number-past-pythons-digit-limit",
        ),
        (
            {"Network": NET, "Backend": {"Type": 5}}, None, {},
            f"refused: {NET_CONF}: field Backend.Type = 5: was read as a number, not as text; "
            "put it in quotes: '5'",
        ),
        (
            {"Network": NET, "SubnetLen": "x"}, None, {},
            f"refused: {NET_CONF}: field SubnetLen = 'x': must be an integer, not text",
        ),
        (
            None, None, {"data": {"net-conf.json": 5}},
            "refused: configmap kube-system/kube-flannel-cfg: field data[net-conf.json] = 5: "
            "must be a string",
        ),
        (
            None, None, {"kind": "Secret"},
            "refused: kubectl get configmap kube-flannel-cfg: expected kind ConfigMap, "
            "ConfigMapList or List, got 'Secret'",
        ),
    ],
)  # fmt: skip
def test_flannels_net_conf_field_by_field(
    conf: object, raw: str | None, top: dict[str, Any], outcome: str
) -> None:
    assert netconf(conf, raw, **top) == outcome


def test_a_net_conf_without_a_namespace_is_kube_systems() -> None:
    doc = copy.deepcopy(FLANNEL)
    del doc["metadata"]["namespace"]
    assert k8s.parse_flannel_netconf(json.dumps(doc)).namespace == "kube-system"


def listed(*namespaces: str, extra: tuple[dict[str, Any], ...] = ()) -> str:
    items = []
    for ns in namespaces:
        doc = copy.deepcopy(FLANNEL)
        doc["metadata"]["namespace"] = ns
        items.append(doc)
    try:
        found = k8s.parse_flannel_netconf(json.dumps({"kind": "List", "items": [*items, *extra]}))
    except DecodeError as e:
        return f"refused: {e}"
    return found.namespace


WHAT = "refused: kubectl get configmap kube-flannel-cfg: "


def test_flannels_configmap_is_picked_from_a_list_over_every_namespace() -> None:
    other = {"kind": "ConfigMap", "metadata": {"name": "other", "namespace": "x"}, "data": {}}
    anonymous = {"kind": "ConfigMap", "data": {}}
    assert listed("kube-flannel", extra=(other, anonymous)) == "kube-flannel"
    assert listed("kube-flannel", "kube-system") == (
        f"{WHAT}kube-flannel-cfg is in both kube-flannel and kube-system: an upgrade from a "
        "manifest before flannel v0.20 left the old one; delete the objects of the namespace "
        "the running kube-flannel DaemonSet does not use"
    )
    assert listed("default", "apps") == (
        f"{WHAT}no ConfigMap kube-flannel-cfg in kube-flannel or kube-system; found only in "
        "apps, default; is flannel installed? `kubectl get pods -A -l app=flannel`"
    )
    assert listed() == (
        f"{WHAT}no ConfigMap kube-flannel-cfg in kube-flannel or kube-system; is flannel "
        "installed? `kubectl get pods -A -l app=flannel`"
    )


def cluster(text: str) -> str:
    doc = copy.deepcopy(KUBEADM)
    doc["data"]["ClusterConfiguration"] = text
    try:
        return repr(k8s.parse_kubeadm_networking(json.dumps(doc)))
    except DecodeError as e:
        return f"refused: {e}"


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        (
            "kind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16,fd00::/56\n",
            "KubeadmNetworking(pod_subnet=IPv4Network('10.244.0.0/16'), service_subnet=None, "
            "dns_domain='cluster.local', kubernetes_version='')",
        ),
        (
            "kind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16, 10.245.0.0/16\n",
            f"refused: {CLUSTER}: networking.podSubnet = '10.244.0.0/16, 10.245.0.0/16': needs "
            "one IPv4 CIDR",
        ),
        (
            "kind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.1.0.1/16\n",
            f"refused: {CLUSTER}: field networking.serviceSubnet = '10.1.0.1/16': is not an IPv4 "
            "CIDR like 10.244.0.0/16 (10.1.0.1/16 has host bits set); did you mean 10.1.0.0/16?",
        ),
        (
            "kind: InitConfiguration\n",
            f"refused: {CLUSTER}: kind is 'InitConfiguration', expected ClusterConfiguration",
        ),
        ("- a\n", f"refused: {CLUSTER} = ['a']: must be a YAML mapping"),
        (
            "a: [\n",
            f"refused: {CLUSTER}: not YAML (line 2, column 1: is not valid YAML: while parsing a "
            "flow node: expected the node content, but found '<stream end>')",
        ),
        (
            "kind: ClusterConfiguration\nnetworking:\n  dnsDomain: 5\n",
            f"refused: {CLUSTER}: field networking.dnsDomain = 5: was read as a number, not as "
            "text; put it in quotes: '5'",
        ),
        (
            "kind: ClusterConfiguration\nkubernetesVersion: 5\n",
            f"refused: {CLUSTER}: field kubernetesVersion = 5: was read as a number, not as "
            "text; put it in quotes: '5'",
        ),
    ],
)
def test_kubeadms_cluster_configuration_field_by_field(text: str, outcome: str) -> None:
    assert cluster(text) == outcome
