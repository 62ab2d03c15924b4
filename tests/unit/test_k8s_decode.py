"""kubectl's output decoded (lab/k8s/decode.py) to the letter: output that is no JSON object,
or holds a number too long to read, is named with what was asked, never raised as Python's own
error."""

from __future__ import annotations

import pytest

from lab.k8s.decode import document, items_of, too_long
from lab.model.strict import DecodeError


def test_kubectl_output_that_is_no_json_object_is_named_with_what_was_asked() -> None:
    with pytest.raises(DecodeError) as e:
        document("[1, 2]", "kubectl get nodes")
    assert str(e.value) == "kubectl get nodes = [1, 2]: expected a JSON object, got a list"
    with pytest.raises(DecodeError) as e:
        document("{", "kubectl get nodes")
    assert e.value.problem.where == "kubectl get nodes"
    assert e.value.problem.value == "{"
    assert e.value.problem.message.startswith("output is not JSON (Expecting property name")
    with pytest.raises(DecodeError) as e:
        items_of({"kind": "List", "items": [{"kind": "Node"}, 7]}, "kubectl get nodes", "Node")
    assert str(e.value) == "kubectl get nodes: items[1] = 7: must be an object"
    assert items_of({"kind": "NodeList"}, "kubectl get nodes", "Node") == []


def test_kubectl_output_with_a_number_too_long_to_read_is_named_not_raised() -> None:
    # past Python's int digit limit (4300) json.loads raises a plain ValueError, no
    # JSONDecodeError: it is refused as the others are, without Python's advice to raise it
    assert document('{"n": ' + "9" * 4300 + "}", "kubectl get nodes") == {"n": int("9" * 4300)}
    raw = '{"n": ' + "9" * 4301 + "}"
    with pytest.raises(DecodeError) as e:
        document(raw, "kubectl get nodes")
    assert e.value.problem.where == "kubectl get nodes"
    assert e.value.problem.value == raw
    assert e.value.problem.message == (
        "output holds a number too long to read (Exceeds the limit (4300 digits) for integer "
        "string conversion: value has 4301 digits)"
    )


def test_a_number_too_long_keeps_pythons_reason_whole_when_it_gives_no_advice() -> None:
    # what a later Python may write: the reason stays, only "; use ..." advice is cut
    assert too_long(ValueError("Exceeds the limit (4300 digits)")) == (
        "a number too long to read (Exceeds the limit (4300 digits))"
    )
    assert too_long(ValueError("too long; use this; use that")) == (
        "a number too long to read (too long)"
    )
