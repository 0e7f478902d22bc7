"""IdSet: a compact set of id strings must behave exactly like `set[str]` of the same ids."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.lake.idset import IdSet, IdSetBuilder

TOP = 2**64 - 1

# Numeric ids as Meta writes them, the edges of 64 bits, and spellings that int() reads as the
# same number but that must stay distinct strings.
ids = st.one_of(
    st.integers(0, TOP).map(str),
    st.integers(TOP - 3, TOP + 3).map(str),
    st.integers(0, 99).map(lambda n: f"0{n}"),
    st.sampled_from(["", "+7", "-7", " 7", "7 ", "7_0", "\u0667", "\uff17", "1e3", "m1"]),
    st.text(max_size=6),
)


@settings(max_examples=300)
@given(st.lists(ids, max_size=60), st.lists(ids, max_size=30))
def test_an_idset_is_the_set_of_its_ids(items: list[str], probes: list[str]) -> None:
    expected = set(items)
    built = IdSet(items)
    assert len(built) == len(expected)
    assert sorted(built) == sorted(expected)
    assert built == expected
    for probe in [*items, *probes]:
        assert (probe in built) == (probe in expected)


@given(st.lists(st.lists(ids, max_size=20), max_size=5))
def test_a_builder_fed_in_pieces_builds_the_union_and_starts_over(pieces: list[list[str]]) -> None:
    builder = IdSetBuilder()
    for piece in pieces:
        builder.extend(piece)
    added = [i for piece in pieces for i in piece]
    # Before building, it gives back what was added: numeric ids in order, duplicates kept.
    numeric = [i for i in added if IdSet([i]).nbytes]  # stored as a number
    assert list(builder)[: len(numeric)] == numeric
    assert sorted(set(builder)) == sorted(set(added))
    assert builder.build() == set(added)
    assert builder.build() == set()
    assert len(builder) == 0


@pytest.mark.parametrize(
    ("stored", "probe", "found"),
    [
        ("17841400000000001", "17841400000000001", True),
        ("7", "07", False),
        ("07", "7", False),
        ("07", "07", True),
        ("0", "0", True),
        ("0", "00", False),
        (str(TOP), str(TOP), True),
        (str(TOP + 1), str(TOP + 1), True),
        (str(TOP + 1), str(TOP), False),
        ("\u0667", "7", False),
        ("7", "\u0667", False),
    ],
)
def test_membership_is_by_the_exact_string(stored: str, probe: str, found: bool) -> None:
    assert (probe in IdSet([stored])) is found


def test_an_idset_pickles_and_copies() -> None:
    built = IdSet(["17841400000000001", "2", "x"])
    assert pickle.loads(pickle.dumps(built)) == built
    assert copy.deepcopy(built) == built


def test_only_strings_are_members() -> None:
    assert 7 not in IdSet(["7"])
    assert None not in IdSet(["7"])


def test_numeric_ids_take_eight_bytes_each() -> None:
    numbers = [str(17841400000000000 + 3 * i) for i in range(10_000)]
    built = IdSet(reversed([*numbers, *numbers]))  # unsorted, every id twice
    assert len(built) == 10_000
    assert built.nbytes == 8 * 10_000
    assert list(built) == numbers  # numeric ids iterate in numeric order
