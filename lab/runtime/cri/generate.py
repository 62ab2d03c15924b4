"""Regenerate the Python modules of the CRI subset from runtime_v1.proto (grpcio-tools'
protoc, with mypy-protobuf for typed stubs). `python -m lab.runtime.cri.generate [OUT_ROOT]` writes
lab/runtime/cri/runtime_v1_pb2{,_grpc}.py{,i} under OUT_ROOT (default: the repository), exactly the
files that are committed; tests/unit/test_cri_proto.py regenerates into a temporary directory
and compares. Needs the test extras (grpcio-tools, mypy-protobuf)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lab.model import paths

PROTO = Path("lab/runtime/cri/runtime_v1.proto")
OUTPUTS = (
    "runtime_v1_pb2.py",
    "runtime_v1_pb2.pyi",
    "runtime_v1_pb2_grpc.py",
    "runtime_v1_pb2_grpc.pyi",
)
# generated code follows protoc's style, not ours: ruff skips it
HEADER = f"# ruff: noqa  (generated from {PROTO.name} by `python -m lab.runtime.cri.generate`)\n"


class GenerateError(Exception):
    pass


def _plugin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise GenerateError(f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found


def generate(out_root: Path) -> tuple[Path, ...]:
    # the test extras (grpcio-tools has no type hints); imported only when generating
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out_root.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{paths.REPO}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        str(paths.REPO / PROTO),
    ]
    if protoc.main(args) != 0:
        raise GenerateError(f"protoc failed: {' '.join(args)}")
    written = tuple(out_root / PROTO.parent / name for name in OUTPUTS)
    for path in written:
        # mypy-protobuf marks aliases for flake8-pyi (Y015), a code ruff does not know
        text = path.read_text().replace("  # noqa: Y015", "")
        path.write_text(HEADER + text)
    return written


def main(argv: list[str]) -> int:
    out_root = Path(argv[0]) if argv else paths.REPO
    for path in generate(out_root):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
