"""Seeded hashing and the numeric-ID codec that lets the world find any object without tables.

Every generated number comes from `mix` over (seed, indexes, salt) so a world is a pure function of
its seed. IDs carry their indexes plus three check digits, so a lookup is arithmetic, and a made-up
or foreign ID almost never decodes to a real object.
"""

from __future__ import annotations

import hashlib
import zlib
from functools import lru_cache
from typing import NamedTuple

M64 = (1 << 64) - 1

ACCOUNT_BASE = 17_841_400_000_000_000
PAGE_BASE = 100_000_000_000_000
MEDIA_BASE = 17_900_000_000_000_000
USER_ID = "10158000000000001"

MAX_ACCOUNTS = 9_999
MAX_MEDIA = 999_999
SLOT_MEDIA = 0  # a top-level media (what /media lists)
SLOT_CHILD_MAX = 10  # slots 1..10: carousel children
SLOT_STORY = 50  # story number `m` of the account

_MULTIPLIER = 0x5DEECE66D  # odd and not a multiple of 5: invertible modulo powers of ten
_ACCOUNT_SPAN = 10**9
_PAGE_SPAN = 10**12
_MEDIA_SPAN = 10**15

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SHORTCODE_ALPHABET = _ALPHABET + "-_"
TOKEN_BODY_CHARS = 150
_TWO_64 = 18446744073709551616.0


def mix(*parts: int) -> int:
    """A 64-bit hash of integers, stable across processes and Python versions: splitmix64 over
    the parts (`mix_on` from 0, written out: this is the simulator's commonest call)."""
    x = 0
    for p in parts:
        x = ((x ^ (p & M64)) + 0x9E3779B97F4A7C15) & M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
        x ^= x >> 31
    return x


def mix_on(x: int, *parts: int) -> int:
    """`mix(*head, *parts)` given `x = mix(*head)`: values drawn for many keys under one prefix
    (a split's shares, a day's hours) pay for the prefix once. Written inline: a function call
    per part was a fifth of the simulator's CPU under the whole-job benchmark."""
    for p in parts:
        x = ((x ^ (p & M64)) + 0x9E3779B97F4A7C15) & M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
        x ^= x >> 31
    return x


def unit(*parts: int) -> float:
    """A uniform float in [0, 1) drawn from `mix`."""
    return mix(*parts) / _TWO_64


def unit_at(x: int, p: int) -> float:
    """`unit(*head, p)` given `x = mix(*head)`, the one round written out: a day's account
    value is this round."""
    x = ((x ^ (p & M64)) + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return (x ^ (x >> 31)) / _TWO_64


def skewed_weights(head: int, count: int) -> list[float]:
    """`[(unit(*h, i) + 0.05) ** 2 for i in range(count)]` given `head = mix(*h)`, the last
    round written out: a split's weights, drawn for every breakdown of every account total
    (a list of the units built first was a fifth of their cost: 6.5 -> 5.3 us for 5 weights)."""
    out = []
    for i in range(count):
        x = ((head ^ i) + 0x9E3779B97F4A7C15) & M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
        out.append(((x ^ (x >> 31)) / _TWO_64 + 0.05) ** 2)
    return out


def units_then(head: int, count: int, tail: int) -> list[float]:
    """`[unit(*h, i, tail) for i in range(count)]` given `head = mix(*h)`, both rounds written
    out (an online_followers day draws its 24 hours so, a call per hour was most of its cost)."""
    out = []
    for i in range(count):
        x = ((head ^ i) + 0x9E3779B97F4A7C15) & M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
        x ^= x >> 31
        x = ((x ^ tail) + 0x9E3779B97F4A7C15) & M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
        out.append((x ^ (x >> 31)) / _TWO_64)
    return out


def name_key(name: str) -> int:
    """A stable integer for a string (metric names, salts): crc32 is stable, `hash()` is not."""
    return zlib.crc32(name.encode())


def token_for(seed: int, kind: str, index: int, prefix: str = "EAAG") -> str:
    """A token shaped like Meta's (`EAAG` + ~150 alphanumerics; Instagram User tokens start
    with `IGAA`), derived from the seed."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=64).digest()
    n = int.from_bytes(digest + hashlib.sha512(digest).digest(), "big")
    chars = []
    for _ in range(TOKEN_BODY_CHARS):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return prefix + "".join(chars)


def shortcode(*parts: int) -> str:
    n = mix(*parts)
    chars = []
    for _ in range(11):
        n, r = divmod(n, 64)
        chars.append(_SHORTCODE_ALPHABET[r])
        if not n:
            n = mix(n, len(chars), *parts)
    return "".join(chars)


def _check(seed: int, a: int, m: int, slot: int) -> int:
    return mix(seed, a, m, slot) % 1000


def _scramble(n: int, modulus: int) -> int:
    """A bijection on [0, modulus) so that IDs look random while staying decodable."""
    return (n * _MULTIPLIER) % modulus


_INVERSES: dict[int, int] = {}


def _unscramble(n: int, modulus: int) -> int:
    inverse = _INVERSES.get(modulus)
    if inverse is None:
        inverse = _INVERSES[modulus] = pow(_MULTIPLIER, -1, modulus)
    return (n * inverse) % modulus


def account_id(seed: int, a: int) -> str:
    n = (a + 1) * 1000 + _check(seed, a, -1, -1)
    return str(ACCOUNT_BASE + _scramble(n, _ACCOUNT_SPAN))


@lru_cache(maxsize=4096)
def decode_account(seed: int, ident: str) -> int | None:
    """The account index an IG user id encodes, or None for anything else. Remembered: every
    call to an account's edges decodes its id, and the check digits' mixing was a thirtieth
    of an account insights op."""
    if not ident.isdigit() or len(ident) != 17:
        return None
    n = int(ident) - ACCOUNT_BASE
    if not 0 <= n < _ACCOUNT_SPAN:
        return None
    n = _unscramble(n, _ACCOUNT_SPAN)
    a = n // 1000 - 1
    if not 0 <= a < MAX_ACCOUNTS or n % 1000 != _check(seed, a, -1, -1):
        return None
    return a


def page_id(seed: int, a: int) -> str:
    n = (a + 1) * 1000 + _check(seed, a, -2, -2)
    return str(PAGE_BASE + _scramble(n, _PAGE_SPAN))


def decode_page(seed: int, ident: str) -> int | None:
    if not ident.isdigit() or len(ident) != 15:
        return None
    n = int(ident) - PAGE_BASE
    if not 0 <= n < _PAGE_SPAN:
        return None
    n = _unscramble(n, _PAGE_SPAN)
    a = n // 1000 - 1
    if not 0 <= a <= MAX_ACCOUNTS or n % 1000 != _check(seed, a, -2, -2):
        return None
    return a


class MediaKey(NamedTuple):
    account: int
    position: int
    slot: int


def media_id(seed: int, a: int, m: int, slot: int) -> str:
    n = ((a * 1_000_000 + m) * 100 + slot) * 1000 + _check(seed, a, m, slot)
    return str(MEDIA_BASE + _scramble(n, _MEDIA_SPAN))


def decode_media(seed: int, ident: str) -> MediaKey | None:
    """(account, media index, slot) for a media id, or None when the id is not one of ours."""
    if not ident.isdigit() or len(ident) != 17:
        return None
    n = int(ident) - MEDIA_BASE
    if not 0 <= n < _MEDIA_SPAN:
        return None
    n, check = divmod(_unscramble(n, _MEDIA_SPAN), 1000)
    n, slot = divmod(n, 100)
    a, m = divmod(n, 1_000_000)
    if check != _check(seed, a, m, slot):
        return None
    return MediaKey(a, m, slot)
