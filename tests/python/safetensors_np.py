"""A minimal safetensors reader and writer with numpy only (Debian has no `safetensors` package),
shared by the Python differential tests: 8-byte little-endian header length, JSON header (padded
with spaces to a multiple of 8), raw little-endian C-order data; F32 and F64. The writer adds icl's
per-tensor CRC-32 checksums ("icl.crc32.<name>" metadata, zlib.crc32; docs/io.md "Checksums")
unless checksum=False, so that C++ verifies checksums computed by Python's standard library."""
import json
import struct
import zlib

import numpy as np

DT = {"F32": "<f4", "F64": "<f8"}


def read(path):
    """Returns ({name: numpy array}, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype=DT[t["dtype"]]).reshape(t["shape"])
    return out, meta


def write(path, tensors, meta=None, checksum=True):
    """Writes {name: float32/float64 numpy array} (and string metadata) to `path`."""
    entries, blobs, off = {}, [], 0
    meta = dict(meta or {})
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = {np.dtype("float32"): "F32", np.dtype("float64"): "F64"}[arr.dtype]
        blob = arr.astype(DT[dt]).tobytes()
        entries[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(blob)]}
        if checksum:
            meta[f"icl.crc32.{name}"] = f"{zlib.crc32(blob):08x}"
        blobs.append(blob)
        off += len(blob)
    header = {"__metadata__": meta, **entries} if meta else entries
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
