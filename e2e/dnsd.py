"""The CI labs' cluster DNS server: the stand-in for CoreDNS behind the kube-dns Service
(e2e/services.py), run in a pod of the suite as `python3 -c SOURCE ZONE`. Standard library
only; it imports nothing of the harness (it runs in the client image and on the nodes).

ZONE is JSON: {"records": {"NAME": ["IP", ...], ...}, "domain": "cluster.local",
"port": 53}. Over UDP it answers an A (or ANY) query for a name of `records` with its
addresses, a name of `domain` it does not hold with NXDOMAIN (as CoreDNS's kubernetes plugin
does), anything else with REFUSED (there is no upstream to forward to). Answers carry the
question, TTL 5, no compression beyond the question's name."""

from __future__ import annotations

import json
import socket
import struct
import sys
from collections.abc import Mapping, Sequence

A, ANY, IN = 1, 255, 1
NOERROR, FORMERR, NXDOMAIN, REFUSED = 0, 1, 3, 5
TTL = 5


def read_question(packet: bytes) -> tuple[int, int, str, int, int]:
    """(id, flags, name, qtype, end of question) of a query; ValueError when malformed."""
    if len(packet) < 12:
        raise ValueError("short header")
    ident, flags, questions = struct.unpack("!HHH", packet[:6])
    if questions != 1:
        raise ValueError(f"{questions} questions")
    labels, offset = [], 12
    while True:
        if offset >= len(packet):
            raise ValueError("name runs past the packet")
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("a compressed name in a question")
        labels.append(packet[offset : offset + length].decode("ascii", "replace"))
        offset += length
    if offset + 4 > len(packet):
        raise ValueError("question without type and class")
    qtype, _qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return ident, flags, ".".join(labels).lower(), qtype, offset + 4


def answer(packet: bytes, records: Mapping[str, Sequence[str]], domain: str) -> bytes:
    """The response to one query packet (FORMERR for a packet that is no query)."""
    try:
        ident, flags, name, qtype, end = read_question(packet)
    except ValueError:
        ident = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
        return struct.pack("!HHHHHH", ident, 0x8000 | FORMERR, 0, 0, 0, 0)
    found = records.get(name)
    if found is not None:
        rcode, addresses = NOERROR, list(found) if qtype in (A, ANY) else []
    elif name == domain or name.endswith("." + domain):
        rcode, addresses = NXDOMAIN, []
    else:
        rcode, addresses = REFUSED, []
    # QR, opcode 0, AA, RD copied, RA
    out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    header = struct.pack("!HHHHHH", ident, out_flags, 1, len(addresses), 0, 0)
    body = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", A, IN, TTL, 4) + socket.inet_aton(ip) for ip in addresses
    )
    return header + packet[12:end] + body


def serve(zone: Mapping[str, object]) -> None:
    records = {str(k).lower().rstrip("."): list(v) for k, v in dict(zone["records"]).items()}  # type: ignore[call-overload]
    domain = str(zone.get("domain", "cluster.local")).lower()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", int(zone.get("port", 53))))  # type: ignore[call-overload]
    while True:
        packet, peer = sock.recvfrom(4096)
        sock.sendto(answer(packet, records, domain), peer)


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
