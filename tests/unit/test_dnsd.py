"""The cluster DNS stand-in's packets (e2e/dnsd.py), byte for byte: the queries and the answers
are written out here from RFC 1035's layout, not built with the code under test."""

from __future__ import annotations

import pytest

from e2e import dnsd

# header: id 0x1234, flags RD (0x0100), 1 question, no answer, authority or additional record
HEADER = bytes.fromhex("1234 0100 0001 0000 0000 0000")
# web.ns.svc.cluster.local, type A (1), class IN (1)
WEB = b"\x03web\x02ns\x03svc\x07cluster\x05local\x00"
A_IN = bytes.fromhex("0001 0001")
QUERY = HEADER + WEB + A_IN
RECORDS = {"web.ns.svc.cluster.local": ["10.244.1.5", "10.244.2.7"]}


def reply(flags: str, answers: int) -> bytes:
    return bytes.fromhex(f"1234 {flags} 0001 {answers:04x} 0000 0000")


def a_record(address: str) -> bytes:
    # a pointer to the question's name (offset 12), A, IN, TTL 5, 4 bytes of address
    return bytes.fromhex("c00c 0001 0001 00000005 0004") + bytes(map(int, address.split(".")))


def test_a_query_is_read_as_its_id_flags_lowercased_name_type_and_end() -> None:
    assert dnsd.read_question(QUERY) == (0x1234, 0x0100, "web.ns.svc.cluster.local", 1, 42)
    upper = HEADER + b"\x03WEB\x02Ns\x03svc\x07cluster\x05local\x00" + bytes.fromhex("001c 0001")
    assert dnsd.read_question(upper + b"trailing") == (
        0x1234,
        0x0100,
        "web.ns.svc.cluster.local",
        28,
        42,
    )
    assert dnsd.read_question(HEADER + b"\x00" + A_IN) == (0x1234, 0x0100, "", 1, 17)


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (QUERY[:11], "short header"),
        (bytes.fromhex("1234 0100 0002 0000 0000 0000") + WEB + A_IN, "2 questions"),
        (bytes.fromhex("1234 0100 0000 0000 0000 0000"), "0 questions"),
        (HEADER + b"\x03web\xc0\x0c" + A_IN, "a compressed name in a question"),
        (HEADER + b"\x03web\x40\x0c" + A_IN, "a compressed name in a question"),
        (HEADER + b"\x03web\x02ns", "name runs past the packet"),
        (HEADER, "name runs past the packet"),
        (HEADER + WEB + A_IN[:3], "question without type and class"),
    ],
)
def test_a_packet_that_is_no_single_question_is_refused_with_what_is_wrong(
    packet: bytes, why: str
) -> None:
    with pytest.raises(ValueError, match=f"^{why}$"):
        dnsd.read_question(packet)


def test_a_name_it_holds_is_answered_with_every_address_in_order_and_the_question() -> None:
    # QR, AA, RD (copied), RA, NOERROR
    assert dnsd.answer(QUERY, RECORDS, "cluster.local") == (
        reply("8580", 2) + WEB + A_IN + a_record("10.244.1.5") + a_record("10.244.2.7")
    )
    any_query = HEADER + WEB + bytes.fromhex("00ff 0001")
    assert dnsd.answer(any_query, RECORDS, "cluster.local") == (
        reply("8580", 2)
        + WEB
        + bytes.fromhex("00ff 0001")
        + a_record("10.244.1.5")
        + a_record("10.244.2.7")
    )


def test_another_type_for_a_name_it_holds_has_no_answer_and_no_error() -> None:
    aaaa = HEADER + WEB + bytes.fromhex("001c 0001")
    assert dnsd.answer(aaaa, RECORDS, "cluster.local") == reply("8580", 0) + WEB + aaaa[-4:]


def test_recursion_desired_is_copied_not_invented() -> None:
    query = bytes.fromhex("1234 0000 0001 0000 0000 0000") + WEB + A_IN
    assert dnsd.answer(query, RECORDS, "cluster.local")[:4] == bytes.fromhex("1234 8480")


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        (b"\x04gone\x02ns\x03svc\x07cluster\x05local\x00", "8583"),  # in the domain: NXDOMAIN
        (b"\x07cluster\x05local\x00", "8583"),  # the domain itself
        (b"\x0anotcluster\x05local\x00", "8585"),  # only ends like it: REFUSED
        (b"\x07example\x03org\x00", "8585"),  # no upstream to forward to: REFUSED
    ],
)
def test_a_name_it_does_not_hold_is_nxdomain_in_the_domain_and_refused_elsewhere(
    name: bytes, flags: str
) -> None:
    query = HEADER + name + A_IN
    assert dnsd.answer(query, RECORDS, "cluster.local") == reply(flags, 0) + name + A_IN


@pytest.mark.parametrize(
    ("packet", "response"),
    [
        (bytes.fromhex("abcd 01"), "abcd 8001 0000 0000 0000 0000"),  # its id, FORMERR
        (bytes.fromhex("abcd"), "abcd 8001 0000 0000 0000 0000"),  # an id and nothing else
        (bytes.fromhex("ab"), "0000 8001 0000 0000 0000 0000"),  # not even an id
        (b"", "0000 8001 0000 0000 0000 0000"),
        (bytes.fromhex("abcd 0100 0002 0000 0000 0000"), "abcd 8001 0000 0000 0000 0000"),
    ],
)
def test_a_packet_that_is_no_query_gets_formerr_with_its_id(packet: bytes, response: str) -> None:
    assert dnsd.answer(packet, RECORDS, "cluster.local") == bytes.fromhex(response)


def test_only_recursion_desired_is_copied_from_the_querys_flags() -> None:
    # a query with every other flag bit set (opcode, AA, TC, RA, Z, a response code): the
    # answer's flags are its own, RD alone copied
    query = bytes.fromhex("1234 7fff 0001 0000 0000 0000") + WEB + A_IN
    assert dnsd.answer(query, RECORDS, "cluster.local")[:4] == bytes.fromhex("1234 8580")


def test_ids_types_and_flags_past_the_sign_bit_are_read_unsigned() -> None:
    query = bytes.fromhex("abcd 8100 0001 0000 0000 0000") + WEB + bytes.fromhex("ff00 0001")
    assert dnsd.read_question(query) == (0xABCD, 0x8100, "web.ns.svc.cluster.local", 0xFF00, 42)


def test_a_byte_that_is_no_ascii_in_a_name_is_replaced_not_refused() -> None:
    query = HEADER + b"\x03w\xffb\x00" + A_IN
    assert dnsd.read_question(query) == (0x1234, 0x0100, "w\ufffdb", 1, 21)
