"""Bounded reader and writer for the wire encoding.

Every read checks the remaining length first, and every length prefix is checked against the
caller's bound before anything is sliced or allocated. Any violation raises decode_error.
"""

from __future__ import annotations

from .alerts import AlertDescription, ProtocolError


class DecodeError(ProtocolError):
    def __init__(self, reason: str) -> None:
        super().__init__(AlertDescription.decode_error, reason)


class Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, n: int) -> memoryview:
        if n > self.remaining:
            raise DecodeError(f"need {n} bytes, {self.remaining} left")
        view = self._data[self._pos : self._pos + n]
        self._pos += n
        return view

    def uint(self, size: int) -> int:
        return int.from_bytes(self._take(size), "big")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u24(self) -> int:
        return self.uint(3)

    def u64(self) -> int:
        return self.uint(8)

    def fixed(self, n: int) -> bytes:
        return bytes(self._take(n))

    def vector(self, length_size: int, minimum: int, maximum: int, what: str) -> bytes:
        """A length-prefixed opaque value whose length must lie in [minimum, maximum]."""
        length = self.uint(length_size)
        if not minimum <= length <= maximum:
            raise DecodeError(f"{what}: length {length} outside [{minimum}, {maximum}]")
        return bytes(self._take(length))

    def u16_list(self, minimum: int, maximum: int, what: str) -> tuple[int, ...]:
        """A u8-length-prefixed list of u16 values, between minimum and maximum entries."""
        raw = self.vector(1, 2 * minimum, 2 * maximum, what)
        if len(raw) % 2:
            raise DecodeError(f"{what}: odd length {len(raw)}")
        return tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2))

    def finish(self, what: str) -> None:
        if self.remaining:
            raise DecodeError(f"{what}: {self.remaining} trailing bytes")


class Writer:
    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def uint(self, value: int, size: int) -> Writer:
        self._parts.append(value.to_bytes(size, "big"))
        return self

    def u8(self, value: int) -> Writer:
        return self.uint(value, 1)

    def u16(self, value: int) -> Writer:
        return self.uint(value, 2)

    def u24(self, value: int) -> Writer:
        return self.uint(value, 3)

    def u64(self, value: int) -> Writer:
        return self.uint(value, 8)

    def fixed(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def vector(self, length_size: int, data: bytes) -> Writer:
        if len(data) >= 1 << (8 * length_size):
            raise ValueError(f"value of {len(data)} bytes does not fit a {length_size}-byte length")
        self.uint(len(data), length_size)
        self._parts.append(bytes(data))
        return self

    def u16_list(self, values: tuple[int, ...]) -> Writer:
        return self.vector(1, b"".join(v.to_bytes(2, "big") for v in values))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)
