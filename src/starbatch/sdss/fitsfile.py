"""Just enough FITS for the APOGEE readers, read with ``os.pread``: every HDU's header
(all are walked on opening, to count the HDUs and to find a truncated file, as
astropy.io.fits does), the cards the readers ask for, and only the pixels they use (one
apStar row, one table cell).

Why not a FITS library here (docs/benchmarks.md, "Reading spectra"): the readers'
budget is 0.4 ms per file. astropy.io.fits takes 1-1.6 ms to open a file and read three
arrays, 5 ms for an mwm file. fitsio (cfitsio) takes 0.9-1.1 ms for the same on every
file with a long header or binary tables (real DR17 apStar and apVisit, mwmStar,
mwmVisit): it lists every HDU on opening, with a header search per keyword, and reads a
header in time quadratic in its cards (1.5-2.9 ms for the 121 cards of a real apStar's
HDU0). tests/unit/test_readers_fast.py checks every reader built on this module against
astropy.io.fits on real, synthetic and broken files.
"""

from __future__ import annotations

import math
import os
import re
from functools import cached_property, lru_cache

import numpy as np

BLOCK = 2880
CARD = 80
_END = b"END     "

# Image BITPIX and binary-table TFORM letters -> big-endian numpy dtype.
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_TFORM_DTYPE = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
# Bytes per element of every TFORM letter (X: bits), to find a column's offset in a row.
_TFORM_BYTES = {**{k: np.dtype(v).itemsize for k, v in _TFORM_DTYPE.items()}, "A": 1}
_TFORM_BYTES.update(L=1, C=8, M=16, P=8, Q=16)
_TFORM = re.compile(r"\s*(\d*)([LXBIJKAEDCMPQ])")
# A value field as astropy.io.fits reads one (its _value_NFSC_RE): a string, T or F, a
# number (blanks and d or e exponents allowed) or a complex pair, then maybe a comment.
_NUMBER = r"[+-]? *(?:\.\d+|\d+(?:\.\d*)?) *(?:[deDE] *[+-]? *\d+)?"
_VALUE = re.compile(
    rf" *(?:'(?P<string>[ -~]*?)'(?=$|/| )|(?P<bool>[FT])|(?P<number>{_NUMBER})"
    rf"|\( *(?P<real>{_NUMBER}) *, *(?P<imag>{_NUMBER}) *\))? *(?:/.*)?$",
    re.S,
)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?")
_EXPONENT = str.maketrans("dD", "eE", " ")
_ASCII = bytes(range(128)) + b"?" * 128
# XTENSION -> astropy's HDU class name, which the readers' messages use.
_KIND = {"IMAGE": "ImageHDU", "BINTABLE": "BinTableHDU", "TABLE": "TableHDU"}


class FitsError(ValueError):
    """Not FITS, truncated, or a structure this module does not read (the message does
    not name the file: the readers add it)."""


def card_value(field: str):
    """A card's value field (columns 11-80) as astropy.io.fits reads it: a string (quotes
    undone, trailing blanks dropped), bool, int, float or complex; None when undefined.
    FitsError where astropy cannot parse it either."""
    # Quickly, the usual values: a string without quotes inside, a plain number, T, F.
    if field.startswith("'"):
        end = field.find("'", 1)
        text, rest = field[1:end], field[end + 1 :].lstrip()
        if end > 0 and text.isascii() and text.isprintable() and rest[:1] in ("", "/"):
            return text.rstrip()
    else:
        text = field.split("/", 1)[0].strip()
        if _PLAIN_NUMBER.fullmatch(text):
            return _number(text)
        if text in ("T", "F"):
            return text == "T"
    value = _VALUE.match(field)
    if value is None:
        raise FitsError(f"a value astropy cannot parse either: {field.strip()!r}")
    if value["string"] is not None:
        return value["string"].replace("''", "'").rstrip()
    if value["bool"]:
        return value["bool"] == "T"
    if value["number"]:
        return _number(value["number"])
    if value["real"]:
        return complex(_number(value["real"]), _number(value["imag"]))
    return None


def _number(text: str) -> int | float:
    """int when it has no decimal point or exponent, as astropy's (int, else float)."""
    text = text.translate(_EXPONENT)
    return float(text) if "." in text or "e" in text or "E" in text else int(text)


class HDU:
    """One HDU: its header (the bytes up to END) and where its data are. Keyword
    lookups give the first card with that keyword, as astropy's ``header[key]`` does."""

    def __init__(self, index: int, header: bytes, data_start: int):
        self.index, self.header, self.data_start = index, header, data_start
        self._next_in_place = 1  # see _mandatory
        self.bitpix = self._mandatory("BITPIX")
        if self.bitpix not in _BITPIX:
            raise FitsError(f"HDU{index}: BITPIX = {self.bitpix} is not a FITS BITPIX")
        naxis = self._counted("NAXIS")
        axes = [self._counted(f"NAXIS{n}") for n in range(1, naxis + 1)]
        self.shape = tuple(reversed(axes))  # numpy (C) order; () when there are no axes
        count = math.prod(axes) if axes else 0
        if index and count:  # a primary HDU's random groups are not read here
            count = (self._counted("PCOUNT", 0) + count) * self._counted("GCOUNT", 1)
        blocks = -(-abs(self.bitpix) // 8 * count // BLOCK)  # ceil(bytes / BLOCK)
        self.data_end = data_start + blocks * BLOCK
        # Tables: column name -> n, and (byte offset in a row, repeat, TFORM letter) of
        # columns 1, 2, ... as far as they were needed ([0]: a column 0 of no width).
        self._column_numbers: dict[str, int | None] = {}
        self._layout: list[tuple[int, int, str]] = [(0, 0, "A")]

    @cached_property
    def _cards(self) -> dict[bytes, int]:
        """Keyword (8 bytes, blank-padded) -> number of its first card, made in C: a few
        microseconds where a search per keyword would scan the header for each absent one."""
        keywords = np.frombuffer(self.header, "S8")[:: CARD // 8].tolist()
        return dict(zip(reversed(keywords), range(len(keywords) - 1, -1, -1), strict=True))

    def __contains__(self, key: str) -> bool:
        return _keyword(key) in self._cards

    def get(self, key: str, default=None):
        at = self._cards.get(_keyword(key), -1)
        if at < 0:
            return default
        # As astropy: non-ASCII bytes read as "?", and a card without "= " has the rest
        # of the card as its value.
        card = self.header[at * CARD : (at + 1) * CARD].translate(_ASCII).decode("ascii")
        try:
            value = card_value(card[10:]) if card[8:10] == "= " else card[8:].rstrip()
        except FitsError as exc:
            raise FitsError(f"HDU{self.index} {key}: {exc}") from None
        return default if value is None else value

    def _counted(self, key: str, default: int | None = None) -> int:
        """A mandatory card that counts something: never negative (a negative size
        would send the walk backwards through the file)."""
        value = self._mandatory(key, default)
        if value < 0:
            raise FitsError(f"HDU{self.index}: {key} = {value} is negative")
        return value

    def _mandatory(self, key: str, default: int | None = None) -> int:
        """The next of the cards the standard puts first, in this order: BITPIX, NAXIS,
        NAXIS1..n, and in extensions PCOUNT, GCOUNT. While each is in its place no earlier
        card can have its keyword, so that card is read (most HDUs are walked past, and
        never need the index); after one that is not, the index finds them."""
        at = self._next_in_place
        if at and self.header.startswith(_keyword(key), at * CARD):
            self._next_in_place += 1
        else:
            self._next_in_place, at = 0, self._cards.get(_keyword(key), -1)
        if at < 0 and default is not None:
            return default
        card = self.header[at * CARD : (at + 1) * CARD] if at >= 0 else b""
        try:
            if card[8:10] == b"= ":
                return int(card[10:].split(b"/", 1)[0])
        except ValueError:
            pass
        raise FitsError(f"HDU{self.index}: no integer {key} card")

    @cached_property
    def kind(self) -> str:
        """astropy's class name for this HDU: PrimaryHDU, ImageHDU, BinTableHDU, ..."""
        if self.index == 0:
            return "PrimaryHDU"
        xtension = card_value(self.header[10:CARD].decode("latin-1"))  # the first card
        return _KIND.get(str(xtension).strip().upper(), "NonstandardExtHDU")

    @cached_property
    def name(self) -> str:
        """EXTNAME, as astropy's ``hdu.name`` (PRIMARY for an HDU0 without one)."""
        return str(self.get("EXTNAME", "PRIMARY" if self.index == 0 else ""))

    @cached_property
    def has_scaling(self) -> bool:
        """Whether any card could scale the data (one look, not one per column)."""
        return any(key in self.header for key in (b"BSCALE", b"BZERO", b"TSCAL", b"TZERO"))

    @property
    def nrows(self) -> int:
        return self.shape[0] if len(self.shape) == 2 else 0

    @cached_property
    def tfields(self) -> int:
        return self.get("TFIELDS", 0)

    @cached_property
    def columns(self) -> list[str]:
        """A binary table's column names (TTYPEn), in order."""
        return [str(self.get(f"TTYPE{n}", "")) for n in range(1, self.tfields + 1)]

    def column_number(self, name: str) -> int | None:
        """n of the first column called exactly ``name``; None if there is none. Found
        from the name's bytes, without reading every TTYPEn card (tables have 20-50)."""
        if name not in self._column_numbers:
            numbers, quoted = [], b"'" + name.encode("latin-1")
            at = self.header.find(quoted)
            while at >= 0:
                card = self.header[at - at % CARD : at - at % CARD + CARD]
                number = card[5:8].rstrip()
                if card.startswith(b"TTYPE") and card[8:10] == b"= " and number.isdigit():
                    n = int(number)
                    if n <= self.tfields and self.get(f"TTYPE{n}") == name:
                        numbers.append(n)
                at = self.header.find(quoted, at + 1)
            self._column_numbers[name] = min(numbers, default=None)
        return self._column_numbers[name]

    def has_column(self, name: str) -> bool:
        return self.column_number(name) is not None

    def column(self, name: str) -> tuple[int, int, int, str]:
        """Where column ``name`` is: (n, byte offset in a row, repeat, TFORM letter).
        As astropy's record[name]: the first column called ``name``, else the only one
        whose name differs in case alone."""
        n = self.column_number(name)
        if n is None:
            folded = [c.lower() for c in self.columns]
            if folded.count(name.lower()) != 1:
                raise KeyError(name)
            n = folded.index(name.lower()) + 1
        while len(self._layout) <= n:  # the columns up to it, once per table
            k, (offset, repeat, letter) = len(self._layout), self._layout[-1]
            offset += -(-repeat // 8) if letter == "X" else repeat * _TFORM_BYTES[letter]
            tform = _TFORM.match(str(self.get(f"TFORM{k}", "")))
            if tform is None:
                raise FitsError(f"HDU{self.index}: TFORM{k} is not a binary-table format")
            self._layout.append((offset, int(tform.group(1) or 1), tform.group(2)))
        return n, *self._layout[n]


def _scaling(hdu: HDU, dtype: np.dtype, scale_key: str, zero_key: str) -> np.dtype | None:
    """The unsigned dtype for FITS's unsigned-integer convention (zero = 2**(bits-1)),
    None when the data are not scaled. Other scalings no APOGEE product uses: refused."""
    if not hdu.has_scaling:
        return None
    scale, zero = hdu.get(scale_key, 1), hdu.get(zero_key, 0)
    if scale == 1 and zero == 0:
        return None
    if scale == 1 and dtype.kind == "i" and zero == 2 ** (8 * dtype.itemsize - 1):
        return np.dtype(f"u{dtype.itemsize}")
    raise FitsError(f"HDU{hdu.index}: scaled data ({scale_key}/{zero_key} = {scale}/{zero})")


def _unsigned(data: np.ndarray, unsigned: np.dtype | None) -> np.ndarray:
    """FITS's unsigned integers are stored less 2**(bits-1): flipping the sign bit adds
    it back. Other data are returned as stored (big-endian: numpy converts them in the
    one pass that makes the readers' float64/int64 arrays)."""
    if unsigned is None:
        return data
    return (data.astype(data.dtype.newbyteorder("=")) ^ np.iinfo(data.dtype).min).view(unsigned)


class FitsFile:
    """An open FITS file: ``hdus`` (every header, read on opening), pixels on demand."""

    def __init__(self, path):
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self.size = os.fstat(self._fd).st_size
            self.hdus = self._walk()
        except BaseException:
            os.close(self._fd)
            raise

    def __enter__(self) -> FitsFile:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._fd)

    def _read(self, offset: int, dtype: np.dtype, count: int) -> np.ndarray:
        """``count`` values of ``dtype`` from ``offset``, read straight into the array."""
        data = np.empty(count, dtype)
        if os.preadv(self._fd, [data], offset) != data.nbytes:
            raise FitsError(f"file ends at byte {self.size}, before byte {offset + data.nbytes}")
        return data

    def _walk(self) -> list[HDU]:
        hdus, offset = [], 0
        while offset < self.size:
            hdu = self._hdu(len(hdus), offset)
            if hdu is None:
                break
            if hdu.data_end > self.size:
                raise FitsError(
                    f"truncated: HDU{hdu.index} ends at byte {hdu.data_end}, "
                    f"the file at {self.size}"
                )
            hdus.append(hdu)
            offset = hdu.data_end
        if not hdus:
            raise FitsError("empty or not a FITS file")
        return hdus

    def _hdu(self, index: int, offset: int) -> HDU | None:
        """The HDU whose header starts at ``offset``; None when no more HDUs follow.
        As astropy reads files: bytes after the last HDU that do not start a header, or
        a header that ends in a partial block, end the list of HDUs; a header cut off
        at a block boundary before its END card is an error."""
        text = os.pread(self._fd, BLOCK, offset)
        if len(text) < BLOCK or not text.startswith(b"XTENSION= " if index else b"SIMPLE  = "):
            return None
        end = _find_end(text)
        while end < 0:
            block = os.pread(self._fd, BLOCK, offset + len(text))
            if len(block) < BLOCK:
                if block:
                    return None
                raise FitsError(f"HDU{index}: the file ends before the header's END card")
            end = _find_end(text + block, len(text))
            text += block
        return HDU(index, text[: end + CARD], offset + len(text))

    def image(self, hdu: HDU, row: int | None = None) -> np.ndarray:
        """The image of ``hdu``, or only its row ``row`` (along the first numpy axis)."""
        dtype = np.dtype(_BITPIX[hdu.bitpix])
        unsigned = _scaling(hdu, dtype, "BSCALE", "BZERO")
        shape = hdu.shape if row is None else hdu.shape[1:]
        count = math.prod(shape)
        start = hdu.data_start + (0 if row is None else row * count * dtype.itemsize)
        return _unsigned(self._read(start, dtype, count), unsigned).reshape(shape)

    def cell(self, hdu: HDU, name: str, row: int):
        """Row ``row`` of binary-table column ``name`` (see HDU.column): a 1-D array of
        its repeat count, or a str (trailing blanks and NULs dropped) for a character
        column."""
        n, offset, repeat, letter = hdu.column(name)
        start = hdu.data_start + row * hdu.shape[1] + offset
        if letter == "A":
            text = self._read(start, np.dtype("u1"), repeat).tobytes()
            return text.decode("latin-1").rstrip("\0").rstrip()
        if letter not in _TFORM_DTYPE:
            raise FitsError(f"HDU{hdu.index}: column {name!r} has format {letter}")
        dtype = np.dtype(_TFORM_DTYPE[letter])
        unsigned = _scaling(hdu, dtype, f"TSCAL{n}", f"TZERO{n}")
        return _unsigned(self._read(start, dtype, repeat), unsigned)


@lru_cache(maxsize=512)
def _keyword(key: str) -> bytes:
    return f"{key:<8}".encode()


def _find_end(text: bytes, start: int = 0) -> int:
    """Offset of the END card in ``text`` (from ``start``, a card boundary); -1 if none."""
    # Searching for "END" alone is ~10x quicker than for "END     " in a header, which
    # is mostly blanks.
    at = text.find(b"END", start)
    while at >= 0 and (at % CARD or not text.startswith(_END, at)):
        at = text.find(b"END", at + 1)
    return at
