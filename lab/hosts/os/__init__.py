"""The OS families a lab can run: the registry and its profiles (lab/hosts/os/base.py); the
shipped ones are CentOS 7 (el7.py, the guide's) and Debian 12 (debian12.py, the offline box)."""

from lab.hosts.os.base import (
    BoxState,
    OsProfile,
    families,
    profile,
    profile_of,
    register,
    unregister,
)

__all__ = [
    "BoxState",
    "OsProfile",
    "families",
    "profile",
    "profile_of",
    "register",
    "unregister",
]
