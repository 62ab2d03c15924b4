"""The guide lab on a real host, second reading (issue 29): what a kubeadm 1.18 + flannel
v0.14.0 on CentOS 7 expert still finds, one test per fix, each failing on the code before it.
(Item 1, nginx without `ip`: tests/unit/test_k8s_driver.py and test_parse.py; item 2, the labs'
networks: test_shipped_labs.py; item 11, the preflight's pins: test_preflight_pins.py.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.common import waits
from lab.common.commands import Output, cmd
from lab.hosts.hostcheck import lab_endpoints, registry_of
from lab.hosts.pins import image_pins
from lab.model.config import validate_lab
from lab.model.labfile import load_lab
from provision import el7
from provision.apply import Applier, provision
from provision.common import SWAP, fstab_without_swap
from provision.model import AnyStep, NotSettled
from provision.steps import dry_run, inputs_for, render_plan, steps_for
from tests.unit.fake_node import FakeNode, World, sets, text

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")


def guide_steps() -> tuple[AnyStep, ...]:
    """The guide lab's steps, flannel's placed by the el7 path (the manifest text unused)."""
    return steps_for(GUIDE, "")


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


# --- 7. cri-tools pinned: gpgcheck is on for the Aliyun repository -------------------------


def test_cri_tools_is_pinned_with_kubeadm_and_a_newer_build_is_replaced() -> None:
    fresh = shown(el7.K8S_PACKAGES.plan(GUIDE, WORKER, el7.PackagesFacts(None, (), False)))
    assert (
        "yum install -y kubelet-1.18.1-0 kubeadm-1.18.1-0 kubectl-1.18.1-0 kubernetes-cni-0.8.7-0 "
        "cri-tools-1.13.0-0" in fresh
    )
    newest = ("kubelet 1.18.1", "kubeadm 1.18.1", "kubectl 1.18.1", "kubernetes-cni 0.8.7")
    facts = el7.PackagesFacts(None, (*newest, "cri-tools 1.26.0"), True)
    assert shown(el7.K8S_PACKAGES.plan(GUIDE, WORKER, facts))[1] == (
        "yum remove -y kubelet kubeadm kubectl kubernetes-cni cri-tools"
    )
    assert "cri-tools" in el7.RPMS, "the installed version is probed"


def test_a_malformed_cri_tools_pin_is_rejected_before_any_vm() -> None:
    lab = dataclasses.replace(GUIDE, kubernetes=dataclasses.replace(K8S, cri_tools_version="1.13"))
    (problem,) = [p for p in validate_lab(lab) if p.field == "kubernetes.cri_tools_version"]
    assert "must be an rpm version-release like 1.13.0-0" in str(problem)


# --- 8. the box's 2020-era CA bundle is updated from the vault ------------------------------


def test_the_vault_step_updates_the_boxs_ca_bundle_from_the_vault() -> None:
    plan = el7.VAULT.plan(GUIDE, WORKER, el7.VAULT.fresh(GUIDE, WORKER))
    assert shown(plan)[1:] == ["yum clean metadata", "yum update -y ca-certificates"]
    assert plan[-1].mirror, "it talks to the vault: retried within the mirror policy"
    current = el7.VaultFacts(el7.render_vault_repos(GUIDE), ("ca-certificates 2023.2.60_v7.0.306",))
    assert el7.VAULT.plan(GUIDE, WORKER, current) == ()
    assert "ca-certificates" in el7.RPMS


def test_ca_bundle_versions_compare_as_numbers() -> None:
    key = el7.rpm_version_key
    assert key("2023.2.60_v7.0.306") == (2023, 2, 60)
    assert key("2019.2.32") < key(el7.CA_CERTIFICATES_MIN) <= key("2021.2.50")
    assert key("2021.2.50") < key("2021.10.1")


def test_the_vault_step_converges_once_yum_updated_the_bundle() -> None:
    repos = el7.render_vault_repos(GUIDE)
    world: World = {"repo": repos, "ca": "2019.2.32"}
    reads = {
        cmd("cat", el7.BASE_REPO): text("repo"),
        el7.INSTALLED.command: lambda w: Output(1, f"ca-certificates {w['ca']}\n"),
    }
    writes = {cmd("yum", "update", "-y", "ca-certificates", mirror=True): sets(ca="2023.2.60")}
    node = FakeNode("k8s-node1", world, reads, writes)
    changed: list[int] = []
    Applier(GUIDE, WORKER, node, {}).phase((el7.VAULT,), lambda step, n: changed.append(n))
    assert changed == [1]
    assert node.world["ca"] == "2023.2.60"


# --- 9. ~vagrant/.kube belongs to vagrant (kubectl writes its cache there) ------------------


def kubeconfig_node(world: World) -> FakeNode:
    """`install -D` makes missing parents as root (0755), as coreutils does; `install -d` sets
    the mode and owner of a directory, made or already there."""
    digest = "4f9a" * 16
    files = tuple(el7.kubeconfig_targets())

    def sums(w: World) -> Output:
        have = [el7.ADMIN_CONF, *(p for p in files if p in w)]
        return Output(0 if len(have) == 3 else 1, "".join(f"{digest}  {p}\n" for p in have))

    def stats(w: World) -> Output:
        have = [p for p in (*files, el7.USER_KUBE_DIR) if p in w]
        return Output(0, "".join(f"{p} {w[p][0]} {w[p][1]}\n" for p in have))

    def copy(path: str, owner: str) -> Callable[[World], int]:
        def run(w: World) -> int:
            w.setdefault(path.rsplit("/", 1)[0], ("755", "root"))
            w[path] = ("600", owner)
            return 0

        return run

    sha, stat = el7.kubeconfig_facts(GUIDE, PLANE).values()
    writes: dict[el7.Command, Callable[[World], int]] = {
        el7.Command(
            ("install", "-d", "-m", "0700", "-o", "vagrant", "-g", "vagrant", el7.USER_KUBE_DIR)
        ): sets(**{el7.USER_KUBE_DIR: ("700", "vagrant")}),
    }
    for path, owner in el7.kubeconfig_targets().items():
        argv = ("install", "-D", "-m", "0600", "-o", owner, "-g", owner, el7.ADMIN_CONF, path)
        writes[el7.Command(argv)] = copy(path, owner)
    return FakeNode("k8s-master", world, {sha.command: sums, stat.command: stats}, writes)


def test_the_login_users_kube_directory_is_made_the_users_own_before_the_copy() -> None:
    node = kubeconfig_node({})
    Applier(GUIDE, PLANE, node, {}).phase((el7.KUBECONFIG,), lambda step, n: None)
    assert node.world[el7.USER_KUBE_DIR] == ("700", "vagrant")
    assert node.world["/home/vagrant/.kube/config"] == ("600", "vagrant")
    assert node.ran_argv()[0][:2] == ("install", "-d"), "before install -D makes it root's"


def test_a_kube_directory_root_made_on_an_earlier_run_is_given_back() -> None:
    world: World = {
        "/root/.kube": ("755", "root"),
        "/root/.kube/config": ("600", "root"),
        el7.USER_KUBE_DIR: ("755", "root"),
        "/home/vagrant/.kube/config": ("600", "vagrant"),
    }
    node = kubeconfig_node(world)
    Applier(GUIDE, PLANE, node, {}).phase((el7.KUBECONFIG,), lambda step, n: None)
    assert [c[:2] for c in node.ran_argv()] == [("install", "-d")]
    assert node.world[el7.USER_KUBE_DIR] == ("700", "vagrant")


# --- 6. kubeadm's images on every node before the join; provisioning ends settled ----------

K8S_DATA = ROOT / "tests" / "data" / "k8s"
REPO = "registry.aliyuncs.com/google_containers/"
KUBEADM_118 = tuple(
    REPO + image
    for image in (
        "kube-apiserver:v1.18.1",
        "kube-controller-manager:v1.18.1",
        "kube-scheduler:v1.18.1",
        "kube-proxy:v1.18.1",
        "pause:3.2",
        "etcd:3.4.3-0",
        "coredns:1.6.7",
    )
)


def test_kubeadm_images_are_pre_pulled_on_every_node_with_the_guides_flags() -> None:
    assert all(el7.KUBEADM_IMAGES.applies_to(GUIDE, node) for node in GUIDE.nodes)
    (pull,) = el7.KUBEADM_IMAGES.plan(GUIDE, WORKER, el7.KUBEADM_IMAGES.fresh(GUIDE, WORKER))
    assert pull.argv == (
        *("kubeadm", "config", "images", "pull", "--kubernetes-version=1.18.1"),
        *("--image-repository", "registry.aliyuncs.com/google_containers"),
    )
    assert pull.mirror
    init = el7.KUBEADM_INIT.plan(GUIDE, PLANE, el7.ExistsFacts(False))
    assert [c.argv[:2] for c in init] == [("kubeadm", "init")], "the images are there by then"
    order = [s.key for s in guide_steps()]
    assert order.index("kubeadm-images") < order.index("kubeadm-init")


def test_kubeadm_images_are_read_from_kubeadm_itself_and_docker() -> None:
    listing, docker = el7.KUBEADM_IMAGES.commands(GUIDE, WORKER)
    assert listing.argv[:4] == ("kubeadm", "config", "images", "list")
    assert docker.argv == ("docker", "images", "--format", "{{.Repository}}:{{.Tag}}")
    listed = "".join(f"{image}\n" for image in KUBEADM_118)
    present = "".join(f"{image}\n" for image in KUBEADM_118 if "kube-proxy" not in image)
    facts = el7.KUBEADM_IMAGES.read_positional(
        GUIDE, WORKER, (Output(0, listed), Output(0, present + "busybox:1.28\n"))
    )
    assert facts.wanted == KUBEADM_118
    assert len(el7.KUBEADM_IMAGES.plan(GUIDE, WORKER, facts)) == 1, "kube-proxy is missing"
    done = el7.KUBEADM_IMAGES.read_positional(GUIDE, WORKER, (Output(0, listed), Output(0, listed)))
    assert el7.KUBEADM_IMAGES.plan(GUIDE, WORKER, done) == ()
    # kubeadm not installed yet (a stale read): pull, never "done"
    unknown = el7.KUBEADM_IMAGES.read_positional(
        GUIDE, WORKER, (Output(127, ""), Output(0, listed))
    )
    assert unknown.wanted is None
    assert len(el7.KUBEADM_IMAGES.plan(GUIDE, WORKER, unknown)) == 1


def settled_facts(nodes: str, pods: str, nodes_exit: int = 0) -> el7.ClusterFacts:
    return el7.SETTLED.read_positional(
        GUIDE,
        PLANE,
        (
            Output(nodes_exit, (K8S_DATA / nodes).read_text()),
            Output(0, (K8S_DATA / pods).read_text()),
        ),
    )


def test_the_last_step_is_a_bounded_wait_for_nodes_ready_and_kube_system_running() -> None:
    steps = guide_steps()
    assert steps[-1] is el7.SETTLED
    assert el7.SETTLED.scope == "control-plane"
    assert el7.SETTLED.wait is waits.CLUSTER_SETTLED
    assert waits.CLUSTER_SETTLED.timeout_s == 600
    assert (
        el7.SETTLED.plan(GUIDE, PLANE, settled_facts("nodes.json", "pods-kube-system.json")) == ()
    )
    with pytest.raises(NotSettled, match=r"^node k8s-node2: not Ready \(Unknown: NodeStatus"):
        el7.SETTLED.plan(
            GUIDE, PLANE, settled_facts("nodes-not-ready.json", "pods-kube-system.json")
        )
    crash = settled_facts("nodes.json", "pods-kube-system-crashloop.json")
    with pytest.raises(NotSettled, match="coredns-66bff467f8-6h8mh on k8s-master: phase Running"):
        el7.SETTLED.plan(GUIDE, PLANE, crash)
    down = settled_facts("nodes.json", "pods-kube-system.json", nodes_exit=1)
    assert down.nodes == ("`kubectl get nodes -o json` exited 1 (API server not up yet?)",), (
        "an API server that does not answer yet is waited for, not an error"
    )


def cluster_node(answers: list[tuple[str, str]]) -> FakeNode:
    """The control plane answering kubectl with recorded JSON, one (nodes, pods) per read."""
    left = list(answers)

    def nodes(w: World) -> Output:
        w["now"] = left.pop(0) if len(left) > 1 else left[0]
        return Output(0, (K8S_DATA / w["now"][0]).read_text())  # type: ignore[index]

    def pods(w: World) -> Output:
        return Output(0, (K8S_DATA / w["now"][1]).read_text())  # type: ignore[index]

    return FakeNode("k8s-master", {}, {el7.NODES_JSON: nodes, el7.SYSTEM_PODS_JSON: pods}, {})


def test_provisioning_waits_until_the_cluster_settles_reading_it_again() -> None:
    node = cluster_node(
        [
            ("nodes-not-ready.json", "pods-kube-system.json"),
            ("nodes.json", "pods-kube-system-crashloop.json"),
            ("nodes.json", "pods-kube-system.json"),
        ]
    )
    slept: list[float] = []
    changed: list[int] = []
    Applier(GUIDE, PLANE, node, {}, sleep=slept.append).phase(
        (el7.SETTLED,), lambda step, n: changed.append(n)
    )
    assert changed == [0], "a wait changes nothing on the node"
    assert len(node.round_trips) == 3
    assert slept == [5, 5]


def test_a_cluster_that_never_settles_fails_the_step_naming_what_is_not_ready() -> None:
    fast = dataclasses.replace(
        el7.SETTLED, wait=waits.Policy("cluster settled (test)", timeout_s=600, max_attempts=3)
    )
    node = cluster_node([("nodes-not-ready.json", "pods-kube-system.json")])
    reports = provision(GUIDE, {"k8s-master": node}, (fast,), sleep=lambda s: None)
    (report,) = [r for r in reports if r.error]
    assert report.error == (
        "step 15 'every node Ready, every kube-system pod Running' failed on k8s-master: "
        "cluster settled (test): not within 600s: node k8s-node2: not Ready (Unknown: "
        "NodeStatusUnknown: Kubelet stopped posting node status.)"
    )
    assert len(node.round_trips) == 3


def test_the_plan_shows_the_wait_with_what_it_reads() -> None:
    text = render_plan(PLANE, dry_run(GUIDE, PLANE, guide_steps()[-1:]))
    assert text.splitlines()[1:] == [
        "## step 15 'every node Ready, every kube-system pod Running' -- (harness) kubectl get "
        "nodes: the cluster settled before anything uses it",
        "   (a wait, at most 600 s, every 5 s: reads until settled, else fails naming what is not)",
        "   sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json",
        "   sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system get pods "
        "-o json",
    ]


# --- 5. Docker Hub: each image pulled once per lab, the workers load the master's copy ------

PLAN_GOLDEN = ROOT / "tests" / "golden" / "provision" / "plan-guide-centos7.txt"
HUB_PULLS = (
    "docker pull rancher/mirrored-coreos-flannel:v0.14.0",
    "docker pull busybox:1.28",
    "docker pull nginx:1.19",
)


def test_the_plan_pulls_each_docker_hub_image_once_per_lab_and_copies_it() -> None:
    plan = PLAN_GOLDEN.read_text()
    for pull in HUB_PULLS:
        assert plan.count(pull) == 1, pull
    by_node = plan.split("\n# ")
    assert all(pull in by_node[0] for pull in HUB_PULLS), "on the control plane"
    for worker in by_node[1:]:
        assert "docker load < <k8s-master: docker save quay.io/coreos/flannel:v0.14.0>" in worker
        assert "docker load < <k8s-master: docker save busybox:1.28 nginx:1.19>" in worker
    # agnhost is no Docker Hub image: each node pulls it (registry.k8s.io)
    assert plan.count("docker pull registry.k8s.io/e2e-test-images/agnhost:2.21") == 3


def test_the_workers_copy_after_the_control_plane_pulled() -> None:
    keys = [(s.key, s.scope) for s in guide_steps()]
    plane = keys.index(("flannel-image", "control-plane"))
    assert keys[plane : plane + 4] == [
        ("flannel-image", "control-plane"),
        ("e2e-images", "control-plane"),
        ("flannel-image", "workers"),
        ("e2e-images", "workers"),
    ]


def image_nodes(tmp: Path) -> dict[str, FakeNode]:
    """The master pulls and saves; each worker's `docker load` reads the archive streamed to
    it (a file on this host) and holds what it names."""
    inspect = ("docker", "image", "inspect", "--format", "{{.Id}}")
    images = ("quay.io/coreos/flannel:v0.14.0", "busybox:1.28", "nginx:1.19")
    agnhost = "registry.k8s.io/e2e-test-images/agnhost:2.21"

    def present(image: str) -> Callable[[World], Output]:
        return lambda w: Output(0 if image in w else 1, "")

    def has(*names: str) -> Callable[[World], int]:
        return lambda w: w.update(dict.fromkeys(names, True)) or 0  # type: ignore[func-returns-value]

    def load(path: str) -> Callable[[World], int]:
        def run(w: World) -> int:
            w.update(dict.fromkeys(Path(path).read_text().split(), True))
            return 0

        return run

    reads = {cmd(*inspect, image): present(image) for image in (*images, agnhost)}
    flannel_tar, e2e_tar = tmp / "flannel-image.tar", tmp / "e2e-images.tar"
    master = FakeNode(
        "k8s-master",
        {},
        reads,
        {
            cmd("docker", "pull", "rancher/mirrored-coreos-flannel:v0.14.0", mirror=True): has(
                "rancher/mirrored-coreos-flannel:v0.14.0"
            ),
            cmd("docker", "tag", "rancher/mirrored-coreos-flannel:v0.14.0", images[0]): has(
                images[0]
            ),
            **{cmd("docker", "pull", i, mirror=True): has(i) for i in (*images[1:], agnhost)},
        },
        saves={
            cmd("docker", "save", images[0]): lambda w: images[0].encode(),
            cmd("docker", "save", *images[1:]): lambda w: " ".join(images[1:]).encode(),
        },
    )
    workers = {
        name: FakeNode(
            name,
            {},
            reads,
            {
                el7.load_archive(str(flannel_tar)): load(str(flannel_tar)),
                el7.load_archive(str(e2e_tar)): load(str(e2e_tar)),
                cmd("docker", "pull", agnhost, mirror=True): has(agnhost),
            },
        )
        for name in ("k8s-node1", "k8s-node2")
    }
    return {"k8s-master": master, **workers}


def test_provisioning_pulls_on_the_master_saves_once_and_loads_on_each_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETLAB_STATE", str(tmp_path))
    nodes = image_nodes(tmp_path / GUIDE.name / "images")
    image_steps = tuple(s for s in guide_steps() if s.key in ("flannel-image", "e2e-images"))
    reports = provision(GUIDE, nodes, image_steps, inputs=inputs_for(GUIDE, nodes))
    assert [r.error for r in reports] == ["", "", ""]
    master = nodes["k8s-master"].ran_argv()
    assert [argv[:2] for argv in master].count(("docker", "save")) == 2, "once per archive"
    for name in ("k8s-node1", "k8s-node2"):
        ran = nodes[name].ran_argv()
        assert ran.count(("docker", "load")) == 2
        assert not any(argv[:3] == ("docker", "pull", "busybox:1.28") for argv in ran)
        assert {"quay.io/coreos/flannel:v0.14.0", "busybox:1.28", "nginx:1.19"} <= set(
            nodes[name].world
        )


def test_a_lab_without_docker_hub_images_saves_nothing_and_the_workers_pull() -> None:
    images = dataclasses.replace(
        K8S.e2e_images,
        busybox=el7.Image("busybox:1.28", "registry.example.org/library/busybox:1.28"),
        nginx=el7.Image("nginx:1.19", "registry.example.org/library/nginx:1.19"),
    )
    flannel = dataclasses.replace(GUIDE.pod_network.flannel, mirror_image="")  # type: ignore[arg-type]
    lab = dataclasses.replace(
        GUIDE,
        kubernetes=dataclasses.replace(K8S, e2e_images=images),
        pod_network=dataclasses.replace(GUIDE.pod_network, flannel=flannel),
    )
    assert el7.flannel_hub_images(lab) == () == el7.e2e_hub_images(lab)
    source = el7.ImageArchiveSource(None, el7.e2e_hub_images(lab), "/nowhere/e2e-images.tar")
    assert source() is None, "nothing to save, no control plane asked"
    workers = next(s for s in guide_steps() if s.key == "flannel-image" and s.scope == "workers")
    (pull,) = workers.plan(lab, WORKER, workers.fresh(lab, WORKER))
    assert pull.argv == ("docker", "pull", "quay.io/coreos/flannel:v0.14.0")


# --- 12. a ready variant of the guide lab for hosts outside mainland China ------------------

GLOBAL_FILE = ROOT / "labs" / "guide-centos7-global.yaml"
CHINA = ("aliyun", "aliyuncs", "huaweicloud", "tencent", "tsinghua", ".cn")


def test_the_global_variant_validates_and_is_the_guide_lab_with_other_sources() -> None:
    variant = load_lab(GLOBAL_FILE)
    assert variant.name == GUIDE.name, "one lab: one set of VMs and libvirt networks"
    assert (variant.nodes, variant.network, variant.vm) == (GUIDE.nodes, GUIDE.network, GUIDE.vm)
    k8s = variant.kubernetes
    assert k8s is not None
    assert (k8s.version, k8s.cni_package_version, k8s.cri_tools_version) == (
        K8S.version,
        K8S.cni_package_version,
        K8S.cri_tools_version,
    )
    assert variant.os.vault_url == "https://vault.centos.org/7.9.2009/"
    assert k8s.docker.repo.baseurl == "https://download.docker.com/linux/centos/7/x86_64/stable/"
    assert k8s.image_repository == "registry.k8s.io"
    assert variant.pod_network.flannel is not None
    assert variant.pod_network.flannel.mirror_image == "", "quay.io/coreos/flannel as is"


def test_only_the_kubernetes_118_rpms_stay_on_a_china_copy_and_the_file_says_so() -> None:
    variant = load_lab(GLOBAL_FILE)
    sources = [e for e in lab_endpoints(variant) if any(c in e.url for c in CHINA)]
    assert {e.field.split(".baseurl")[0].split(".gpgkeys")[0] for e in sources} == {
        "kubernetes.repo"
    }
    assert all(registry_of(p.reference) != "registry.aliyuncs.com" for p in image_pins(variant))
    text = GLOBAL_FILE.read_text()
    assert "What has NO alternative: the kubelet, kubeadm and kubectl 1.18.1 rpms" in text
    assert "pkgs.k8s.io starts at 1.24" in text
    readme = (ROOT / "README.md").read_text()
    assert "labs/guide-centos7-global.yaml" in readme
