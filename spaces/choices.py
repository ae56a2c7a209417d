"""Checking an architecture's fields against a space's choice table.

Every failure is a BenchError with a one-line message that names the space, the field and the
allowed values, so that a user who typed an architecture by hand sees what to fix. A value is
returned as the table's own option (so 4 and 4.0 give the same canonical JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from spaces.errors import BenchError


def require_keys(space: str, arch: Any, keys: Iterable[str]) -> None:
    """Raise unless `arch` is a dict with exactly `keys`."""
    keys = set(keys)
    if not isinstance(arch, dict):
        raise BenchError(f"{space}: an architecture is a JSON object with keys {sorted(keys)}")
    missing, unknown = sorted(keys - set(arch)), sorted(set(arch) - keys)
    if missing or unknown:
        raise BenchError(f"{space}: architecture needs exactly the keys {sorted(keys)}; "
                         f"missing {missing}, unknown {unknown}")


def pick(space: str, field: str, value: Any, options: Sequence) -> Any:
    """The option equal to `value`; booleans are not numbers here."""
    if not isinstance(value, bool):
        for option in options:
            if value == option:
                return option
    raise BenchError(f"{space}: {field} = {value!r} is not one of {list(options)}")


def pick_each(space: str, field: str, values: Any, options: Sequence, length: int) -> list:
    """`values` as a list of `length` options, one per layer or stage."""
    if not isinstance(values, list) or len(values) != length:
        raise BenchError(f"{space}: {field} must be a list of {length} values, got {values!r}")
    return [pick(space, f"{field}[{i}]", value, options) for i, value in enumerate(values)]


def positive_int(space: str, field: str, value: Any) -> int:
    """`value` if it is an integer of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchError(f"{space}: {field} must be a positive integer, got {value!r}")
    return value


def require_img_size(space: str, size: Any, *, minimum: int, multiple: int, accepted: str) -> None:
    """Raise unless `size` is an integer of at least `minimum` that `multiple` divides; the
    message says what the space accepts (`accepted`, e.g. "a positive multiple of 16")."""
    if isinstance(size, bool) or not isinstance(size, int) or size < minimum or size % multiple:
        raise BenchError(f"{space}: img_size {size!r} is not accepted; it must be {accepted}")
