"""Reader for LeCun's IDX format (MNIST, Fashion-MNIST), plain or gzipped.

Parsed here rather than through torchvision so the gzipped files Debian installs and the
unpacked files torchvision downloads both load, and so a damaged file is named in the error.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from gentool.errors import GentoolError

# Third byte of the magic number -> element type (the format stores them big-endian).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file; gzip is detected by the .gz suffix or its magic bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            gzipped = path.suffix == ".gz" or file.read(2) == _GZIP_MAGIC
        with (gzip.open if gzipped else open)(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError) as error:
        raise GentoolError(f"could not read {path} ({error}); replace it with a fresh copy of "
                           "the original file.") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise GentoolError(f"{path} is not an IDX file (magic number {raw[:4].hex() or 'empty'});"
                           " replace it with the original MNIST-format file.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GentoolError(f"{path} is truncated inside its header; replace it with the original "
                           "MNIST-format file.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[raw[2]])
    if len(raw) - header != dtype.itemsize * int(np.prod(dims)):
        raise GentoolError(f"{path} holds {len(raw) - header} data bytes but its header "
                           f"announces shape {list(dims)}; replace it with the original file.")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
