"""A compact, immutable set of Graph object ids: numeric ids as sorted 8-byte integers.

A resumed job skips the media its earlier runs committed, and a million media ids held as a
Python `set[str]` cost about 110 MB (a 60-byte string and a hash slot each). Graph ids are decimal
numbers below 2**64, so `IdSet` keeps those as one sorted run of unsigned 64-bit integers (8 bytes
each, found by bisection; Arrow sorts them) and only the others (none from Meta; test ids, odd
spellings like "007") in a plain set. It behaves as a read-only `collections.abc.Set` of the
original strings.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence, Set

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["IdSet", "IdSetBuilder"]

_MAX = 2**64 - 1
_MAX_DIGITS = len(str(_MAX))


def _number(text: str) -> int | None:
    """The id as an integer when `str()` of that integer gives the same text back, else None.

    Only then may the text be stored as a number: "007", "+7", " 7", "7_0" and non-ASCII digits
    (all of which `int()` accepts) must stay themselves.
    """
    if not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
        return None
    if text[0] == "0" and len(text) > 1:
        return None
    value = int(text)
    return value if value <= _MAX else None


class IdSetBuilder:
    """Collects ids at 8 bytes per numeric id, then `build()`s an `IdSet`.

    Also a compact list in its own right: iterating gives back the ids added so far (numeric ones
    first, in the order added, duplicates kept), without the cost of building a set.
    """

    def __init__(self) -> None:
        self._numbers = array("Q")
        self._others: set[str] = set()

    def add(self, item: str) -> None:
        number = _number(item)
        if number is None:
            self._others.add(item)
        else:
            self._numbers.append(number)

    def extend(self, items: Iterable[str]) -> None:
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self._numbers) + len(self._others)

    def __iter__(self) -> Iterator[str]:
        for number in self._numbers:
            yield str(number)
        yield from self._others

    def build(self) -> IdSet:
        """The set of everything added; the builder is left empty.

        Arrow sorts the integers (`sorted()` would hold each as a 32-byte Python int for a
        moment), duplicates are dropped by comparing neighbours (a hash table would cost more
        than the ids), and the set keeps Arrow's sorted buffer: about 24 bytes per id at the peak.
        """
        numbers, self._numbers = self._numbers, array("Q")
        others, self._others = self._others, set()
        if not numbers:
            return IdSet._from_parts(array("Q"), frozenset(others))
        raw = pa.Array.from_buffers(pa.uint64(), len(numbers), [None, pa.py_buffer(numbers)])
        ordered = raw.take(pc.array_sort_indices(raw))
        del raw, numbers
        if len(ordered) > 1:
            fresh = pc.not_equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
            if not pc.all(fresh).as_py():
                ordered = ordered.filter(pa.concat_arrays([pa.array([True]), fresh]))
        view = memoryview(ordered.buffers()[1]).cast("Q")
        return IdSet._from_parts(
            view[ordered.offset : ordered.offset + len(ordered)], frozenset(others)
        )


class IdSet(Set[str]):
    """A read-only set of id strings; see the module docstring for the layout."""

    __slots__ = ("_numbers", "_others")

    _numbers: Sequence[int]
    _others: frozenset[str]

    def __init__(self, items: Iterable[str] = ()) -> None:
        builder = IdSetBuilder()
        builder.extend(items)
        built = builder.build()
        self._numbers, self._others = built._numbers, built._others

    @classmethod
    def _from_parts(cls, numbers: Sequence[int], others: frozenset[str]) -> IdSet:
        """`numbers` must be sorted and free of duplicates."""
        self = cls.__new__(cls)
        self._numbers, self._others = numbers, others
        return self

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        number = _number(item)
        if number is None:
            return item in self._others
        index = bisect_left(self._numbers, number)
        return index < len(self._numbers) and self._numbers[index] == number

    def __iter__(self) -> Iterator[str]:
        for number in self._numbers:
            yield str(number)
        yield from self._others

    def __len__(self) -> int:
        return len(self._numbers) + len(self._others)

    def __repr__(self) -> str:
        return f"IdSet(<{len(self._numbers)} numeric, {len(self._others)} other ids>)"

    def __reduce__(self) -> tuple[type[IdSet], tuple[tuple[str, ...]]]:
        # The numbers may be a view of an Arrow buffer, which neither pickles nor deep-copies.
        return (IdSet, (tuple(self),))

    @property
    def nbytes(self) -> int:
        """The numeric ids' storage (the other ids are ordinary strings in a frozenset)."""
        return 8 * len(self._numbers)
