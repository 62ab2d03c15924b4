"""The pin check in `validate` (lab/model/config.py: validate_pins, with the files
lab/adapters/fetch.py: local_files reads): a flannel manifest sha256 that matches neither the
vendored manifest of that version nor a cached download is named with the file it was compared
with and that file's real sha256; nothing is downloaded (issue 30: a one-digit slip passed
`validate` and failed `plan` after a download, without a word about the vendored file)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import main
from lab.adapters import fetch
from lab.model.config import LocalFile, check_lab

ROOT = Path(__file__).resolve().parents[2]
GUIDE_TEXT = (ROOT / "labs" / "guide-centos7.yaml").read_text()
GUIDE = yaml.safe_load(GUIDE_TEXT)
VENDORED = ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml"
REAL = hashlib.sha256(VENDORED.read_bytes()).hexdigest()
SLIP = REAL[:10] + ("0" if REAL[10] != "0" else "1") + REAL[11:]  # one digit off


def with_pin(sha256: str, **flannel: str) -> dict[str, Any]:
    raw = yaml.safe_load(GUIDE_TEXT)
    raw["pod_network"]["flannel"].update(manifest_sha256=sha256, **flannel)
    return raw


def files_here(*files: LocalFile) -> Any:
    """A strict stand-in for fetch.local_files: the files it was told of, whatever is asked."""
    asked: list[str] = []

    def local(sha256: str) -> tuple[LocalFile, ...]:
        asked.append(sha256)
        return files

    local.asked = asked  # type: ignore[attr-defined]
    return local


VENDOR_FILE = LocalFile("labs/vendor/kube-flannel-v0.14.0.yml", REAL)


def test_a_pin_that_matches_the_vendored_manifest_passes() -> None:
    assert check_lab(with_pin(REAL), "x", local_files=files_here(VENDOR_FILE))[1] == []


def test_a_pin_one_digit_off_names_the_vendored_file_and_its_real_sha256() -> None:
    local = files_here(VENDOR_FILE)
    _, problems = check_lab(with_pin(SLIP), "x", local_files=local)
    (problem,) = problems
    assert problem.where == "pod_network.flannel.manifest_sha256"
    assert problem.value == SLIP
    assert problem.message == (
        f"matches neither labs/vendor/kube-flannel-v0.14.0.yml (the vendored v0.14.0 manifest, "
        f"whose sha256 is {REAL}) nor a cached download: the pin and the vendored manifest "
        "disagree, and plan would find out only after a download"
    )
    assert problem.fix == (
        f"if kube-flannel-v0.14.0.yml is the manifest meant, pin its sha256: {REAL}"
    )
    assert local.asked == [SLIP]


def test_a_cached_download_of_the_pin_satisfies_it() -> None:
    cached = LocalFile("/cache/downloads/" + SLIP, SLIP)
    assert check_lab(with_pin(SLIP), "x", local_files=files_here(cached, VENDOR_FILE))[1] == []


def test_a_manifest_with_nothing_here_to_compare_with_is_left_to_plan() -> None:
    raw = with_pin("0" * 64, version="v0.15.1")
    assert check_lab(raw, "x", local_files=files_here(VENDOR_FILE))[1] == []


def test_without_local_files_there_is_no_pin_check() -> None:
    assert check_lab(with_pin(SLIP), "x")[1] == []


def test_a_malformed_pin_is_said_once_by_its_own_check() -> None:
    _, problems = check_lab(with_pin("XYZ"), "x", local_files=files_here(VENDOR_FILE))
    assert [p.message for p in problems] == ["must be 64 lowercase hex digits"]


# --- the real files and the command line ------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache, and any download an error: validate must not download."""
    monkeypatch.setenv("NETLAB_CACHE", str(tmp_path / "cache"))

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"validate downloaded something: {args}")

    monkeypatch.setattr("urllib.request.urlopen", no_download)
    return tmp_path / "cache" / "downloads"


def test_local_files_reads_the_vendored_manifest_and_the_cached_file(offline: Path) -> None:
    assert VENDOR_FILE in fetch.local_files(SLIP)
    offline.mkdir(parents=True)
    (offline / SLIP).write_bytes(b"a manifest from elsewhere")
    real = hashlib.sha256(b"a manifest from elsewhere").hexdigest()
    cached = LocalFile(str(offline / SLIP), real)
    assert cached in fetch.local_files(SLIP)


def test_validate_names_the_vendored_file_for_a_pin_one_digit_off(
    offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(GUIDE_TEXT.replace(REAL, SLIP))
    assert main(["validate", "--no-host-check", str(lab_file)]) == 2
    output = capsys.readouterr()
    text = output.out + output.err
    assert "matches neither labs/vendor/kube-flannel-v0.14.0.yml" in text
    assert f"pin its sha256: {REAL}" in text


def test_validate_accepts_a_pin_whose_file_is_cached(
    offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = VENDORED.read_bytes() + b"# a local change\n"
    sha = hashlib.sha256(manifest).hexdigest()
    offline.mkdir(parents=True)
    (offline / sha).write_bytes(manifest)
    lab_file = tmp_path / "lab.yaml"
    lab_file.write_text(GUIDE_TEXT.replace(REAL, sha))
    assert main(["validate", "--no-host-check", str(lab_file)]) == 0, capsys.readouterr()
