"""lab/hosts/box.py without building anything: the box's key covers the images it carries, and the
box and its images are built side by side, the box told where the images appear."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab.adapters import imagebuild
from lab.hosts import box


@pytest.fixture
def images_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "images" / "0123"
    monkeypatch.setattr(imagebuild, "inputs_key", lambda: "0123" * 16)
    monkeypatch.setattr(imagebuild, "images_dir", lambda key: where)
    return where


def test_the_box_key_changes_with_the_images_it_carries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imagebuild, "inputs_key", lambda: "a" * 64)
    first = box.inputs_key()
    assert box.inputs_key() == first
    monkeypatch.setattr(imagebuild, "inputs_key", lambda: "b" * 64)
    assert box.inputs_key() != first


def test_the_box_is_built_beside_its_images_and_told_where_they_appear(
    images_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images_dir.mkdir(parents=True)
    (images_dir / box.IMAGES_FAILED).touch()  # left by an earlier failed run
    seen: dict[str, object] = {}
    monkeypatch.setattr(imagebuild, "build", lambda key: seen.setdefault("images", key))

    def build(key: str, where: Path) -> Path:
        seen["box"] = (key, where, (where / box.IMAGES_FAILED).exists())
        return Path("/built.box")

    monkeypatch.setattr(box, "build", build)
    assert box.build_with_images("k" * 64) == Path("/built.box")
    assert seen == {"images": "0123" * 16, "box": ("k" * 64, images_dir, False)}


def test_an_images_failure_stops_the_box_build_and_is_raised(
    images_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def images(key: str) -> None:
        raise RuntimeError("apt: no such package")

    def build(key: str, where: Path) -> Path:
        # build.sh waits until the images' manifest or the failure marker appears
        for _ in range(200):
            if (where / box.IMAGES_FAILED).exists():
                raise RuntimeError("build.sh: the container images failed to build")
            time.sleep(0.01)
        raise AssertionError("the failure marker never appeared")

    monkeypatch.setattr(imagebuild, "build", images)
    monkeypatch.setattr(box, "build", build)
    with pytest.raises(RuntimeError, match="apt: no such package"):
        box.build_with_images("k" * 64)
    assert (images_dir / box.IMAGES_FAILED).exists()


def test_a_warning_of_the_build_is_passed_on_and_its_stage_lines_are_not() -> None:
    out = (
        "[build   41s] packages       41s\n"
        "[build] WARNING: the container images could not be put into the box (see b.log); "
        "it goes without them and provisioning imports them into each node\n"
        "[build   48s] images          1s\n"
    )
    assert box.build_warnings(out) == [out.splitlines()[1]]
    assert box.build_warnings("[build   41s] packages       41s\n") == []
