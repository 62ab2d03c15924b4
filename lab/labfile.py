"""Reading a lab file (the only I/O of the lab model): YAML in, a validated Lab out."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network
from pathlib import Path

import yaml

from lab.config import Lab, LabError, Problem, parse_lab, validate_lab


def load_lab(path: Path | str, host_networks: Iterable[IPv4Network] = ()) -> Lab:
    """Read, structurally parse and validate a lab file; raise LabError with all problems."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise LabError(
            str(path), [Problem("<file>", str(path), f"cannot read ({exc.strerror})")]
        ) from None
    except yaml.YAMLError as exc:
        raise LabError(
            str(path), [Problem("<file>", str(path), f"is not valid YAML: {exc}")]
        ) from None
    lab, problems = parse_lab(raw, str(path))
    if lab is not None:
        problems.extend(validate_lab(lab, host_networks))
    if problems:
        raise LabError(str(path), problems)
    assert lab is not None
    return lab
