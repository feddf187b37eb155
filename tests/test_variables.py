"""Variables pushed and pulled between this process and real kernels, on both wire protocols."""

from __future__ import annotations

import ast
import collections
import fractions

import numpy as np
import pandas as pd
import pytest

from remote_magic import variables
from remote_magic.errors import PickleRequired, UsageError, VariableError

NESTED = {"name": "Zoë ✓ 日本", "values": [1, -2.5, None, True, False, {"deep": [[], {}, ["\u2603"]]}], "big": 2**70}


def sample_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "n": np.arange(5, dtype="int32"),
            "x": [0.5, np.nan, 2.0, -1.0, 1e300],
            "s": ["a", "ü✓", None, "", "long " * 10],
            "c": pd.Categorical(["lo", "hi", "lo", "lo", "hi"], categories=["lo", "hi"], ordered=True),
            "t": pd.date_range("2024-03-30", periods=5, freq="h", tz="Europe/Paris"),
            "b": [True, False, True, True, False],
        },
        index=pd.Index(["r1", "r2", "r3", "r4", "r5"], name="row"),
    )
    frame.insert(3, "o", pd.Series(["p", None, np.nan, "q", "r"], dtype=object, index=frame.index))
    frame.insert(4, "ns", pd.array(["u", pd.NA, "v", "w", pd.NA], dtype="string"))
    return frame


def remote_text(kernel, code: str) -> str:
    return kernel.run(code).raise_for_error().text()


def test_values_round_trip_and_arrive_as_themselves(proto_kernel):
    array = np.random.default_rng(1).standard_normal(1_000_000)
    frame = sample_frame()
    series = pd.Series([3, 1, 2], index=[10, 20, 30], name="s")
    proto_kernel.push({"nested": NESTED, "raw": bytes(range(256)) * 3, "arr": array, "df": frame, "ser": series})

    seen = remote_text(
        proto_kernel,
        "print(nested['name'], type(raw).__name__, len(raw), type(arr).__name__, arr.dtype, arr.shape, arr.flags.writeable)\n"
        "print(type(df).__name__, list(df.columns), df.index.name, str(df['c'].dtype), str(df['t'].dtype.tz))\n"
        "print(ser.to_dict(), df['o'].tolist(), df['ns'].tolist())",
    )
    assert seen == (
        "Zoë ✓ 日本 bytes 768 ndarray float64 (1000000,) True\n"
        "DataFrame ['n', 'x', 's', 'o', 'ns', 'c', 't', 'b'] row category Europe/Paris\n"
        "{10: 3, 20: 1, 30: 2} ['p', None, nan, 'q', 'r'] ['u', <NA>, 'v', 'w', <NA>]\n"
    )
    assert float(remote_text(proto_kernel, "print(repr(float(arr.sum())))")) == float(array.sum())

    back = proto_kernel.pull(["nested", "raw", "arr", "df", "ser"])
    assert back["nested"] == NESTED
    assert back["raw"] == bytes(range(256)) * 3 and type(back["raw"]) is bytes
    np.testing.assert_array_equal(back["arr"], array)
    assert back["arr"].dtype == array.dtype and back["arr"].flags.writeable
    pd.testing.assert_frame_equal(back["df"], frame)
    pd.testing.assert_series_equal(back["ser"], series)


def test_arrays_keep_their_layout_and_scalars_stay_scalars(proto_kernel):
    fortran = np.asfortranarray(np.arange(12, dtype="<i2").reshape(3, 4))
    strided = np.arange(20.0)[::3]
    stamps = np.array(["2024-01-01", "NaT"], dtype="datetime64[ms]")
    proto_kernel.push({"f": fortran, "st": strided, "when": stamps, "one": np.float32(1.5), "empty": np.zeros((0, 3))})
    back = proto_kernel.pull(["f", "st", "when", "one", "empty"])
    np.testing.assert_array_equal(back["f"], fortran)
    assert back["f"].flags.f_contiguous
    np.testing.assert_array_equal(back["st"], strided)
    np.testing.assert_array_equal(back["when"], stamps)
    assert type(back["one"]) is np.float32 and back["one"] == np.float32(1.5)
    assert back["empty"].shape == (0, 3)


def test_pulling_an_object_only_pickle_can_carry_runs_nothing_here(proto_kernel, tmp_path):
    marker = tmp_path / "unpickled-here"
    proto_kernel.run(
        "class Trap:\n"
        f"    def __reduce__(self):\n        return (__import__('io').open, ({str(marker)!r}, 'w'))\n"
        "trap = Trap()"
    ).raise_for_error()
    with pytest.raises(PickleRequired) as refused:
        proto_kernel.pull("trap")
    message = str(refused.value)
    assert "'trap'" in message and "--pickle" in message and "\n" not in message
    assert not marker.exists()


def test_a_remote_that_sends_pickle_anyway_is_refused_here(fresh_kernel, tmp_path):
    """The remote side may be someone else's: even a kernel-side helper changed to pickle
    everything gets its value refused unless pickle was asked for."""
    marker = tmp_path / "unpickled-here"
    fresh_kernel.push({"warm": 1})  # installs the helper
    fresh_kernel.run(
        "import sys\n"
        "helper = next(m for n, m in sys.modules.items() if n.startswith('_remote_magic_variables_'))\n"
        "def always_pickle(value, name, allow, advice):\n"
        "    buffers = []\n"
        "    return helper._pickled(value, buffers), buffers\n"
        "helper.encode = always_pickle\n"
        "class Trap:\n"
        f"    def __reduce__(self):\n        return (__import__('io').open, ({str(marker)!r}, 'w'))\n"
        "trap = Trap()"
    ).raise_for_error()
    with pytest.raises(PickleRequired, match="came pickled"):
        fresh_kernel.pull("trap")
    assert not marker.exists()


def test_pickle_only_when_asked(proto_kernel):
    value = fractions.Fraction(1, 3)
    with pytest.raises(PickleRequired, match="'frac'.*--pickle"):
        proto_kernel.push({"frac": value})
    assert remote_text(proto_kernel, "print('frac' in globals())") == "False\n"
    proto_kernel.push({"frac": value}, pickle=True)
    assert remote_text(proto_kernel, "print(repr(frac))") == "Fraction(1, 3)\n"
    proto_kernel.run("od = __import__('collections').OrderedDict(a=(1, 2))").raise_for_error()
    with pytest.raises(PickleRequired):
        proto_kernel.pull("od")
    assert proto_kernel.pull("od", pickle=True) == collections.OrderedDict(a=(1, 2))


def test_the_kernel_refuses_a_pickled_push_it_was_not_told_about(proto_kernel):
    spec, buffers = variables.varcodec.encode(fractions.Fraction(2, 3), "'sneaky'", True, "")
    manifest = [{"name": "sneaky", "spec": spec, "sizes": [memoryview(b).nbytes for b in buffers]}]
    with pytest.raises(PickleRequired, match="refused"):
        with variables._Transfer(proto_kernel, {"op": "push", "manifest": manifest, "pickle": False}, 30) as transfer:
            transfer.expect("ready")
    assert remote_text(proto_kernel, "print('sneaky' in globals())") == "False\n"


def test_size_limit_and_progress(proto_kernel):
    array = np.arange(3 * 2**20, dtype="u1")  # 3 MiB: more than one piece with 1 MiB pieces
    with pytest.raises(VariableError, match="max_variable_bytes"):
        proto_kernel.push({"limited": array}, max_bytes=2**20)
    assert remote_text(proto_kernel, "print('limited' in globals())") == "False\n"

    pushed, pulled = [], []
    big = np.arange(3 * 2**20, dtype="<u4")  # 12 MiB: three pieces each way
    proto_kernel.push({"big": big}, progress=lambda done, total: pushed.append((done, total)))
    with pytest.raises(VariableError, match=r"^Remote 'big': .* over the limit .*max_variable_bytes"):
        proto_kernel.pull("big", max_bytes=2**20)  # refused by the remote before anything is sent
    back = proto_kernel.pull("big", progress=lambda done, total: pulled.append((done, total)))
    np.testing.assert_array_equal(back, big)
    for calls in (pushed, pulled):
        assert calls[0] == (0, big.nbytes) and calls[-1] == (big.nbytes, big.nbytes)
        assert len(calls) >= 4 and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_remote_without_numpy_says_so_before_the_data_goes(fresh_kernel):
    fresh_kernel.run(
        "import sys\n"
        "class HideNumpy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'pandas'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, HideNumpy())\n"
        "print('numpy' in sys.modules)"
    ).raise_for_error()
    with pytest.raises(VariableError, match="lacks numpy.*install it there"):
        fresh_kernel.push({"a": np.zeros(10)})
    fresh_kernel.push({"fine": [1, 2]})  # other values still go
    assert fresh_kernel.pull("fine") == [1, 2]


def test_bad_names_and_missing_variables(proto_kernel):
    with pytest.raises(UsageError, match="not a variable name"):
        proto_kernel.push({"1x": 1})
    with pytest.raises(UsageError, match="not a variable name"):
        proto_kernel.pull("import")
    with pytest.raises(VariableError, match="no variable 'never_defined'"):
        proto_kernel.pull(["never_defined"])


def test_the_users_namespace_gains_only_the_values(proto_kernel):
    def names():
        return set(ast.literal_eval(proto_kernel.run("print(sorted(globals()))", store_history=False).text()))

    before = names()
    proto_kernel.push({"only_this": 1})
    proto_kernel.pull("only_this")
    assert names() - before == {"only_this"}


# ---------------------------------------------------------------------------------- the magics


def test_push_pull_and_cell_options_in_a_shell(remote_shell):
    shell = remote_shell
    shell.user_ns.update(a=np.arange(5), frame=sample_frame(), text="hé")
    shell.run_line_magic("remote", "push a frame text")
    shell.run_line_magic("remote", "push text --as remote_text")
    shell.run_cell_magic("remote", "-i a -o doubled total", "doubled = a * 2\ntotal = int(doubled.sum()) + len(remote_text)")
    np.testing.assert_array_equal(shell.user_ns["doubled"], np.arange(5) * 2)
    assert shell.user_ns["total"] == 22
    shell.run_line_magic("remote", "pull frame --as frame_back")
    pd.testing.assert_frame_equal(shell.user_ns["frame_back"], sample_frame())

    shell.run_cell_magic("remote", "", "import fractions\nf = fractions.Fraction(1, 7)")
    with pytest.raises(PickleRequired):
        shell.run_line_magic("remote", "pull f")
    shell.run_line_magic("remote", "pull f --pickle")
    assert shell.user_ns["f"] == fractions.Fraction(1, 7)

    with pytest.raises(UsageError, match="--as renames one variable"):
        shell.run_line_magic("remote", "pull a text --as both")
    with pytest.raises(UsageError, match="No local variable 'nothing_here'"):
        shell.run_line_magic("remote", "push nothing_here")
    shell.run_line_magic("config", "RemoteMagic.max_variable_bytes = 10")
    with pytest.raises(VariableError, match=r"%config RemoteMagic.max_variable_bytes"):
        shell.run_line_magic("remote", "push a")


def test_a_failing_cell_pulls_nothing(remote_shell):
    shell = remote_shell
    shell.run_cell_magic("remote", "--no-raise -o late", "late = 1\nraise ValueError('no')")
    assert "late" not in shell.user_ns
