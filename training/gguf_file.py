"""A minimal GGUF (version 3) writer: metadata, then tensors aligned to 32 bytes, and the I2_S
packing of ternary weights (bitnet.cpp's layout, as src/formats/ternary.cpp reads it)."""
import struct

import numpy as np

ALIGN = 32
F32, F16, I2_S = 0, 1, 36
_UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY = 4, 5, 6, 7, 8, 9


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(v):
    """(type id, payload) of a metadata value; ints are u32, floats f32, lists of one kind."""
    if isinstance(v, bool):
        return _BOOL, struct.pack("<?", v)
    if isinstance(v, int):
        return _UINT32, struct.pack("<I", v)
    if isinstance(v, float):
        return _FLOAT32, struct.pack("<f", v)
    if isinstance(v, str):
        return _STRING, _str(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return _ARRAY, struct.pack("<IQ", _STRING, len(v)) + b"".join(_str(x) for x in v)
        if all(isinstance(x, int) for x in v):
            return _ARRAY, struct.pack("<IQ", _INT32, len(v)) + np.asarray(v, dtype="<i4").tobytes()
    raise TypeError(f"unsupported metadata value {v!r}")


def pack_i2s(values, scale):
    """values: int8 array [rows, cols] in {-1, 0, 1}, cols % 128 == 0. Value j of each 128-value
    group is code (value + 1) in byte j % 32 at bit 6 - 2 * (j // 32); rows follow one another,
    then the f32 scale and 28 zero bytes."""
    rows, cols = values.shape
    assert cols % 128 == 0
    codes = (values.astype(np.int16) + 1).astype(np.uint8).reshape(rows, cols // 128, 4, 32)
    packed = (codes[:, :, 0] << 6) | (codes[:, :, 1] << 4) | (codes[:, :, 2] << 2) | codes[:, :, 3]
    return packed.astype(np.uint8).tobytes() + struct.pack("<f", scale) + bytes(28)


def write(path, metadata, tensors):
    """metadata: dict key -> value; tensors: list of (name, shape in ggml order (ne0 first), type
    id, bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for k, v in metadata.items():
        t, payload = _value(v)
        head += _str(k) + struct.pack("<I", t) + payload
    offset, infos = 0, b""
    for name, shape, type_id, data in tensors:
        infos += _str(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", type_id, offset)
        offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    head += infos
    with open(path, "wb") as f:
        f.write(head + bytes(-len(head) % ALIGN))
        for _, _, _, data in tensors:
            f.write(data + bytes(-len(data) % ALIGN))
