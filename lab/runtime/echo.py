"""The fleet's echo server, as the drivers run it in a pod (pure): its command line and the
environment variable it finds its pod's name in. Not an input of the images (the client image
has what it runs: sh, ip, socat, python3), so changing it builds no new image and no new box."""

from __future__ import annotations

import shlex

from lab.runtime.images import ECHO_PORT

# the environment variable a pod's containers find their pod's name in (as kubelet's downward
# API would hand it: the drivers set it)
POD_NAME_ENV = "NETLAB_POD"
# socat's listen backlog is 5: a matrix's fan-in (every source at one endpoint, 8 probes at a
# time per source node) overflowed it under TCG, and a dropped SYN costs the client 1 + 3 s
BACKLOG = 128

# One process answers every datagram (Python 2.7 and 3). socat's UDP4-RECVFROM,fork was tried
# first and lost datagrams under load: its child for one datagram lingers on the shared socket
# and can read the next one, whose answer then never goes out (5 of 40 measured on a busy host).
UDP_SERVER_LINES = (
    "import os, socket, sys",
    "name = os.environ.get('NETLAB_POD', '')",
    "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
    "sock.bind((sys.argv[2] if len(sys.argv) > 2 else '', int(sys.argv[1])))",
    "while True:",
    "    data, peer = sock.recvfrom(65535)",
    # its own address toward the peer: where the kernel sends the answer from
    "    route = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
    "    route.connect(peer)",
    "    own = route.getsockname()[0]",
    "    route.close()",
    "    sock.sendto(('%s %s %s\\n' % (peer[0], name, own)).encode(), peer)",
)


def one_line(lines: tuple[str, ...]) -> str:
    """A Python program as one line for the shell (the node-side command checks read a
    script line by line)."""
    return f"exec({chr(10).join(lines)!r})"


UDP_SERVER = one_line(UDP_SERVER_LINES)


def identity_echo_args(port: int = ECHO_PORT, python: str = "python3") -> tuple[str, ...]:
    """The suite's echo server (the client image: it needs `ip`): every TCP connection and
    every UDP datagram on `port` is answered with one line, `SEEN NAME ADDRESS`: the client
    address it saw, its pod's name ($NETLAB_POD) and its own address as the pod knows it (the
    TCP connection's local end: socat; for UDP its address toward the sender, where the
    answer leaves from: `python`, the interpreter the pod has). A probe knows from it which
    pod answered, either way."""
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not a TCP port")
    pod = f"${POD_NAME_ENV}"
    # no ${...} in the script: systemd-run (the CNI driver's containers) expands it as its own
    script = (
        f"socat TCP-LISTEN:{port},fork,reuseaddr,backlog={BACKLOG} "
        f'SYSTEM:"echo \\$SOCAT_PEERADDR {pod} \\$SOCAT_SOCKADDR" & '
        f"exec {shlex.quote(python)} -c {shlex.quote(UDP_SERVER)} {port}"
    )
    return ("sh", "-c", script)
