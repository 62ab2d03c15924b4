"""The offline Debian 12 box: built by box/build.sh from Debian packages, cached by the hash of
its inputs, added to vagrant with that hash inside, so a changed input means a rebuild and a
re-add (and the stale volume vagrant-libvirt uploaded from the old box is removed first).

The box carries the lab's container images in its containerd store (provisioning then imports
nothing): they are built side by side with it (lab/adapters/imagebuild.py) and build.sh takes
them in once they are there, so the images' inputs are inputs of the box too."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from lab.adapters import imagebuild
from lab.adapters import libvirt as lv
from lab.adapters.local import run
from lab.common.errors import LabStateError
from lab.model import paths
from lab.model.config import Lab

log = logging.getLogger(__name__)
console = Console(stderr=True, highlight=False)

BOX_DIR = paths.REPO / "box"
BOX_FILE = "netlab-debian12.box"
INPUTS_FILE = "netlab-inputs.sha256"  # stored inside the box; vagrant keeps it on box add
BUILD_TIMEOUT_S = 1800
# build.sh waits in the images' directory for imagebuild's MANIFEST, or for this file, which
# says their build failed
IMAGES_FAILED = "failed"


def inputs_key() -> str:
    """sha256 over every file of box/ (the build script, package list, ...), by name, and the
    inputs key of the container images the box carries."""
    digest = hashlib.sha256()
    for path in sorted(p for p in BOX_DIR.rglob("*") if p.is_file() and p.suffix != ".md"):
        digest.update(path.relative_to(BOX_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(b"images\0" + imagebuild.inputs_key().encode())
    return digest.hexdigest()


def box_path(key: str) -> Path:
    return paths.cache_root() / "box" / key[:16] / BOX_FILE


def vagrant_box_dir(name: str) -> Path:
    home = Path(os.environ.get("VAGRANT_HOME", Path.home() / ".vagrant.d"))
    return home / "boxes" / name.replace("/", "-VAGRANTSLASH-") / "0" / "libvirt"


def added_key(name: str) -> str | None:
    try:
        return (vagrant_box_dir(name) / INPUTS_FILE).read_text().strip()
    except OSError:
        return None


def build_with_images(key: str) -> Path:
    """The box, and the container images it carries, built side by side (both download and
    unpack Debian packages; the box takes the images in at its end). Either cached."""
    images_key = imagebuild.inputs_key()
    images_dir = imagebuild.images_dir(images_key)

    def images() -> None:
        try:
            imagebuild.build(images_key)
        except BaseException:
            images_dir.mkdir(parents=True, exist_ok=True)
            (images_dir / IMAGES_FAILED).touch()  # build.sh stops waiting for them
            raise

    (images_dir / IMAGES_FAILED).unlink(missing_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        images_built = pool.submit(images)
        box_built = pool.submit(build, key, images_dir)
        images_built.result()
        return box_built.result()


def build_warnings(stdout: str) -> list[str]:
    """What build.sh says a person must see (a box built without its images, and why)."""
    return [line for line in stdout.splitlines() if line.startswith("[build] WARNING")]


def build(key: str, images_dir: Path) -> Path:
    """box/build.sh, taking in the images that appear in `images_dir` (built meanwhile)."""
    target = box_path(key)
    if target.exists():
        return target
    console.print(f"building the Debian 12 box from Debian packages (inputs {key[:12]}) ...")
    start = time.monotonic()
    # the box appears at `target` only complete and marked: an interrupted build or marking
    # leaves no box that a later run would take for a finished one
    marking = target.with_name(f".{target.name}.marking")
    marking.unlink(missing_ok=True)
    built = run(
        [str(BOX_DIR / "build.sh"), str(target.parent)],
        timeout=BUILD_TIMEOUT_S,
        env={"NETLAB_IMAGES": str(images_dir)},
    )
    for line in build_warnings(built.stdout):
        log.warning("%s", line.removeprefix("[build] WARNING: "))
    os.replace(target, marking)
    with tarfile.open(marking, "a") as tar:
        data = f"{key}\n".encode()
        info = tarfile.TarInfo(INPUTS_FILE)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    os.replace(marking, target)
    console.print(f"box built in {time.monotonic() - start:.0f}s: {target}")
    return target


def remove_uploaded_volumes(name: str) -> None:
    """vagrant-libvirt reuses a volume uploaded from an older box of the same name: drop it,
    unless the VMs of a lab still stand on it (their disks are backed by it)."""
    uploaded = lv.list_lab_objects(name.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image")
    if not uploaded.volumes:
        return
    users = lv.list_lab_objects("netlab-").domains
    if users:
        raise LabStateError(
            f"box/ changed, but {', '.join(users)} still run on the old box {name}: destroy "
            "their labs first (make destroy LAB=...), then build again"
        )
    for qualified in uploaded.volumes:
        log.info("removing stale box volume %s", qualified)
        lv.delete_volume(qualified)


def ensure_box(lab: Lab) -> Path:
    """Build (or reuse) the box and make vagrant use exactly this build. libvirt must be up."""
    key = inputs_key()
    path = build_with_images(key)
    if added_key(lab.vm.box) != key:
        remove_uploaded_volumes(lab.vm.box)
        env = {"VAGRANT_CHECKPOINT_DISABLE": "1", "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1"}
        # cwd: vagrant loads any Vagrantfile in the current directory, even for `box add`
        run(
            ["vagrant", "box", "add", "--force", "--name", lab.vm.box, str(path)],
            timeout=600,
            env=env,
            cwd=str(path.parent),
        )
        console.print(f"added box {lab.vm.box} ({key[:12]})")
    return path
