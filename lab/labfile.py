"""Reading a lab file (the only I/O of the lab model): YAML in, a validated Lab out."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network
from pathlib import Path

import yaml

from lab.config import Lab, LabError, Problem, check_lab


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
    lab, problems = check_lab(raw, str(path), host_networks)
    if lab is None:
        raise LabError(str(path), problems)
    return lab
