"""The e2e suite's order (e2e/conftest.py): tests that make pods of their own first (they need
no fleet, so they run while it is made), then the fleet's tests marked `long`, then the rest,
each class in its collected order."""

from __future__ import annotations

from dataclasses import dataclass

from e2e.conftest import run_first


@dataclass
class Item:
    name: str
    fixturenames: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.marks else None


def test_own_pods_then_long_then_the_rest_in_collected_order() -> None:
    items = [
        Item("matrix", ("fleet",)),
        Item("churn", ("fleet",), ("long",)),
        Item("stop", ("make_cri_pods", "lab")),
        Item("dns", ("fleet",)),
        Item("mtu", ("fleet",), ("long",)),
        Item("contract", ("make_pods",), ("long",)),
    ]
    items.sort(key=run_first)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["stop", "contract", "churn", "mtu", "matrix", "dns"]
