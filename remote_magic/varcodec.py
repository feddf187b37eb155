"""Values as a JSON spec plus binary buffers, and back, without running code unless pickle is allowed.

Kinds: ``json`` (dicts with string keys, lists, strings, numbers, booleans, None), ``bytes``,
``ndarray`` (raw bytes, dtype string and shape; numpy scalars too), ``series`` and ``dataframe``
(per-column raw numpy buffers; strings as UTF-8 bytes with int64 offsets; categoricals as codes and
categories; indexes the same way) and, only when allowed, ``pickle`` (protocol 5, out-of-band
buffers). Decoding anything but ``pickle`` runs no code of the value's making: it builds arrays over
the received bytes (``numpy.frombuffer``, no copy) and plain pandas objects from them.

Both sides use this module: its source is also installed in the remote kernel (see
:mod:`.variables`), so it imports only the standard library at module level.
"""

import importlib.util
import json
import pickle

#: The largest piece of a transfer (client to server) in one message (Jupyter Server refuses incoming websocket
#: messages over 10 MiB).
CHUNK_BYTES = 4 * 1024 * 1024


class Refused(Exception):
    """A value that cannot travel as asked; ``reason`` is ``pickle``, ``library``, ``size``,
    ``missing``, ``name`` or ``malformed``."""

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason


class NoSafeFormat(Refused):
    """Only pickle can carry this value."""

    def __init__(self, what):
        super().__init__(f"{what} has no safe format", "pickle")


# ---------------------------------------------------------------- encoding


def encode(value, name, allow_pickle, advice):
    """``(spec, buffers)`` for ``value``; raises :class:`Refused` (its message names ``name`` and
    ends with ``advice``) when it has no safe format and ``allow_pickle`` is false."""
    buffers = []
    try:
        spec = _encode(value, buffers)
    except NoSafeFormat as refused:
        if not allow_pickle:
            raise Refused(f"{name}: {refused}; {advice}", "pickle") from None
        buffers = []
        spec = _pickled(value, buffers)
    except RecursionError:
        raise Refused(f"{name} is nested too deeply to send.", "malformed") from None
    return spec, buffers


def _encode(value, buffers):
    kind = type(value)
    if kind in (bytes, bytearray):
        buffers.append(memoryview(value))
        return {"kind": "bytes", "type": kind.__name__}
    if _is_json(value):
        buffers.append(memoryview(json.dumps(value, ensure_ascii=False).encode("utf-8")))
        return {"kind": "json"}
    module = kind.__module__.split(".")[0]
    if module == "numpy":
        return _ndarray(value, buffers)
    if module == "pandas":
        return _pandas(value, buffers)
    raise NoSafeFormat(f"a {kind.__module__}.{kind.__qualname__}")


def _is_json(value):
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return True
    if kind is list:
        return all(_is_json(item) for item in value)
    if kind is dict:
        return all(type(key) is str and _is_json(item) for key, item in value.items())
    return False


def _raw(array):
    """The bytes of a C-contiguous array, without a copy."""
    return memoryview(array.reshape(-1).view("u1"))


def _ndarray(value, buffers):
    import numpy as np

    scalar = isinstance(value, np.generic)
    array = np.asarray(value) if scalar else value
    if not isinstance(array, np.ndarray):
        raise NoSafeFormat(f"a numpy {type(value).__name__}")
    dtype = array.dtype
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise NoSafeFormat(f"a numpy array of dtype {dtype}")
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    flat = array.T if order == "F" else np.ascontiguousarray(array)
    buffers.append(_raw(flat))
    return {"kind": "ndarray", "dtype": dtype.str, "shape": list(array.shape), "order": order, "scalar": scalar}


def _pandas(value, buffers):
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        columns = [_column(value.iloc[:, i], buffers) for i in range(value.shape[1])]
        return {"kind": "dataframe", "columns": columns, "index": _index(value.index, buffers), "labels": _index(value.columns, buffers)}
    if isinstance(value, pd.Series):
        return {"kind": "series", "values": _column(value, buffers), "index": _index(value.index, buffers), "name": _label(value.name)}
    raise NoSafeFormat(f"a pandas {type(value).__name__}")


def _label(label):
    if not _is_json(label) or type(label) in (list, dict):
        raise NoSafeFormat(f"a pandas label of type {type(label).__name__}")
    return label


def _index(index, buffers):
    import pandas as pd

    if type(index) is pd.RangeIndex:
        return {"index": "range", "start": index.start, "stop": index.stop, "step": index.step, "name": _label(index.name)}
    if isinstance(index, pd.MultiIndex):
        raise NoSafeFormat("a pandas MultiIndex")
    return {"index": "values", "values": _column(index, buffers), "name": _label(index.name)}


def _column(values, buffers):
    """The spec of a Series' or Index's values; their buffers are appended."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.ascontiguousarray(values.cat.codes if isinstance(values, pd.Series) else values.codes)
        buffers.append(_raw(codes))
        categories = _column(dtype.categories, buffers)
        return {"column": "categorical", "codes": codes.dtype.str, "categories": categories, "ordered": bool(dtype.ordered)}
    if isinstance(dtype, pd.DatetimeTZDtype):
        buffers.append(_raw(np.ascontiguousarray(values.to_numpy(dtype=f"M8[{dtype.unit}]"))))
        return {"column": "datetimetz", "tz": str(dtype.tz), "unit": dtype.unit}
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        buffers.append(_raw(np.ascontiguousarray(values.to_numpy())))
        return {"column": "numpy", "dtype": dtype.str}
    if dtype == object or isinstance(dtype, pd.StringDtype):
        return _strings(values, str(dtype), buffers)
    raise NoSafeFormat(f"a pandas column of dtype {dtype}")


def _strings(values, dtype_name, buffers):
    import numpy as np
    import pandas as pd

    parts, mask = [], np.zeros(len(values), dtype="u1")
    for i, item in enumerate(values):
        if type(item) is str:
            parts.append(item.encode("utf-8", "surrogatepass"))
            continue
        if item is None:
            mask[i] = 1
        elif type(item) is float and item != item:
            mask[i] = 2
        elif item is pd.NA:
            mask[i] = 3
        else:
            raise NoSafeFormat(f"a pandas column holding a {type(item).__name__}")
        parts.append(b"")
    offsets = np.zeros(len(parts) + 1, dtype="<i8")
    np.cumsum([len(part) for part in parts], out=offsets[1:])
    buffers += [memoryview(b"".join(parts)), _raw(offsets), _raw(mask)]
    return {"column": "strings", "dtype": dtype_name if dtype_name in ("object", "str", "string") else "object"}


def _pickled(value, buffers):
    extra = []
    try:
        data = pickle.dumps(value, protocol=5, buffer_callback=extra.append)
    except Exception as exc:
        raise Refused(f"a {type(value).__name__} cannot be pickled ({exc}).", "malformed") from None
    buffers.append(memoryview(data))
    buffers += [buffer.raw() for buffer in extra]
    return {"kind": "pickle", "buffers": len(extra) + 1}


# ---------------------------------------------------------------- what a spec needs


def libraries(spec):
    """The libraries decoding ``spec`` needs."""
    return {"ndarray": {"numpy"}, "series": {"numpy", "pandas"}, "dataframe": {"numpy", "pandas"}}.get(spec.get("kind"), set())


def missing_libraries(spec):
    return sorted(name for name in libraries(spec) if not _importable(name))


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # hidden, or a module without a spec
        return False


# ---------------------------------------------------------------- decoding


def decode(spec, buffers, allow_pickle):
    """The value of ``(spec, buffers)``; pickle only when ``allow_pickle``. Raises :class:`Refused`
    for a pickled value otherwise, and for anything malformed."""
    if not isinstance(spec, dict):
        raise Refused("a value came without a valid description.", "malformed")
    if spec.get("kind") == "pickle":
        if not allow_pickle:
            raise Refused("the value came pickled, which was not allowed (unpickling runs the sender's code).", "pickle")
        return pickle.loads(buffers[0], buffers=buffers[1:])
    queue = list(buffers)
    try:
        value = _decode(spec, queue)
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"a value could not be decoded ({type(exc).__name__}: {exc}).", "malformed") from None
    if queue:
        raise Refused("a value came with more data than it describes.", "malformed")
    return value


def _decode(spec, queue):
    kind = spec["kind"]
    if kind == "json":
        return json.loads(bytes(queue.pop(0)).decode("utf-8"))
    if kind == "bytes":
        data = queue.pop(0)
        return bytearray(data) if spec["type"] == "bytearray" else bytes(data)
    if kind == "ndarray":
        import numpy as np

        dtype = _dtype(spec["dtype"])
        shape = tuple(int(n) for n in spec["shape"])
        flat = np.frombuffer(queue.pop(0), dtype=dtype)
        array = flat.reshape(shape[::-1]).T if spec["order"] == "F" else flat.reshape(shape)
        return array[()] if spec["scalar"] else array
    if kind == "series":
        import pandas as pd

        values = _decode_column(spec["values"], queue)  # in the order encoding wrote them
        index = _decode_index(spec["index"], queue)
        return pd.Series(values, index=index, name=spec["name"], dtype=values.dtype, copy=False)
    if kind == "dataframe":
        import pandas as pd

        columns = [_decode_column(column, queue) for column in spec["columns"]]
        index = _decode_index(spec["index"], queue)
        # Each column's own dtype, stated: pandas would take an object array of strings for "str".
        frame = pd.DataFrame({i: pd.Series(c, index=index, dtype=c.dtype, copy=False) for i, c in enumerate(columns)}, index=index)
        frame.columns = _decode_index(spec["labels"], queue)
        return frame
    raise Refused(f"a value of unknown kind {str(kind)[:30]!r} was refused.", "malformed")


def _dtype(text):
    import numpy as np

    dtype = np.dtype(str(text))
    if dtype.hasobject:
        raise Refused("an array of Python objects was refused (only pickle can carry it).", "pickle")
    return dtype


def _decode_index(spec, queue):
    import pandas as pd

    if spec["index"] == "range":
        return pd.RangeIndex(int(spec["start"]), int(spec["stop"]), int(spec["step"]), name=spec["name"])
    values = _decode_column(spec["values"], queue)
    return pd.Index(values, name=spec["name"], dtype=values.dtype, copy=False)


def _decode_column(spec, queue):
    import numpy as np
    import pandas as pd

    column = spec["column"]
    if column == "numpy":
        return np.frombuffer(queue.pop(0), dtype=_dtype(spec["dtype"]))
    if column == "datetimetz":
        unit = str(spec["unit"])
        if unit not in ("s", "ms", "us", "ns"):
            raise Refused(f"a datetime unit {unit[:10]!r} was refused.", "malformed")
        utc = pd.DatetimeIndex(np.frombuffer(queue.pop(0), dtype=f"<M8[{unit}]")).tz_localize("UTC")
        return utc.tz_convert(str(spec["tz"])).array
    if column == "categorical":
        codes = np.frombuffer(queue.pop(0), dtype=_dtype(spec["codes"]))
        categories = _decode_column(spec["categories"], queue)
        return pd.Categorical.from_codes(codes, categories=categories, ordered=bool(spec["ordered"]))
    if column == "strings":
        data, offsets, mask = bytes(queue.pop(0)), np.frombuffer(queue.pop(0), dtype="<i8"), queue.pop(0)
        missing = {1: None, 2: float("nan"), 3: pd.NA}
        items = [
            missing[flag] if flag else data[start:end].decode("utf-8", "surrogatepass")
            for flag, start, end in zip(bytes(mask), offsets[:-1].tolist(), offsets[1:].tolist())
        ]
        dtype = spec["dtype"] if spec["dtype"] in ("object", "str", "string") else "object"
        if dtype == "object":
            return np.array(items + [None], dtype=object)[:-1]  # (the extra None keeps it one-dimensional)
        return pd.array(items, dtype=dtype)
    raise Refused(f"a column of unknown kind {str(column)[:30]!r} was refused.", "malformed")


# ---------------------------------------------------------------- moving buffers in pieces


def pieces(buffers, size=CHUNK_BYTES):
    """The buffers, back to back, as lists of memoryview slices of at most ``size`` bytes in all."""
    batch, room = [], size
    for buffer in buffers:
        view = memoryview(buffer)
        view = view if view.ndim == 1 and view.format == "B" else view.cast("B")
        offset = 0
        while offset < len(view):
            take = min(room, len(view) - offset)
            batch.append(view[offset : offset + take])
            offset, room = offset + take, room - take
            if room == 0:
                yield batch
                batch, room = [], size
    if batch:
        yield batch


class Assembler:
    """Fills one preallocated (writable) buffer per expected size from the pieces as they come."""

    def __init__(self, sizes):
        self.buffers = [bytearray(int(size)) for size in sizes]
        self.total = sum(len(buffer) for buffer in self.buffers)
        self.done = 0
        self._index, self._offset = 0, 0
        self._skip_empty()

    @property
    def complete(self):
        return self.done >= self.total

    def feed(self, chunks):
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            while len(view):
                if self._index >= len(self.buffers):
                    raise Refused("more data came than was announced.", "malformed")
                target = self.buffers[self._index]
                take = min(len(view), len(target) - self._offset)
                target[self._offset : self._offset + take] = view[:take]
                view, self._offset, self.done = view[take:], self._offset + take, self.done + take
                self._skip_empty()

    def _skip_empty(self):
        while self._index < len(self.buffers) and self._offset >= len(self.buffers[self._index]):
            self._index, self._offset = self._index + 1, 0
