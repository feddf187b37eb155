"""File commands through the kernel: on a real Kernel Gateway (no Contents API) and forced on a
real Jupyter Server, where the Contents API cross-checks every byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_gateway import gateway  # noqa: F401  (the real Kernel Gateway fixture)

import remote_magic
from remote_magic import Server
from remote_magic.errors import AlreadyExists, NotFound, ServerError, UsageError
from remote_magic.kernelfiles import NOTE, KernelFiles, lacks_contents_api

BIG = 5 * 1024 * 1024 + 7  # five chunks and a bit


@pytest.fixture
def gateway_dir(tmp_path):
    """The working directory given to the gateway kernel (the gateway runs on this machine)."""
    folder = tmp_path / "kernel-cwd"
    folder.mkdir()
    return folder


@pytest.fixture
def gateway_shell(shell, gateway, gateway_dir):  # noqa: F811
    """The extension's shell connected to the gateway as 'kg', its kernel working in ``gateway_dir``."""
    connection = remote_magic.registry.connect(gateway.url, token=gateway.token, name="kg")
    connection.start_kernel().run(f"import os; os.chdir({str(gateway_dir)!r})", raise_on_error=True)
    return shell


def magic(shell, capsys, line):
    """Run ``%remote line``: (its result, the stdout it printed)."""
    result = shell.run_line_magic("remote", line)
    return result, capsys.readouterr().out


def test_a_gateway_has_no_contents_api_and_a_server_has_one(gateway, server):  # noqa: F811
    on_gateway = Server(gateway.url, gateway.token)
    try:
        assert lacks_contents_api(on_gateway)
        assert not lacks_contents_api(server)
    finally:
        on_gateway.close()


def test_gateway_upload_download_ls_cat(gateway_shell, gateway_dir, tmp_path, capsys):
    data = os.urandom(BIG)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    _, out = magic(gateway_shell, capsys, f"upload {local} data.bin")
    assert out.splitlines()[0] == NOTE
    assert "Uploaded" in out and "6 chunks" in out
    assert (gateway_dir / "data.bin").read_bytes() == data
    assert [p.name for p in gateway_dir.iterdir()] == ["data.bin"]  # no .part left behind

    back = tmp_path / "back"
    back.mkdir()
    _, out = magic(gateway_shell, capsys, f"download data.bin {back}")
    assert out.splitlines()[0] == NOTE
    assert (back / "data.bin").read_bytes() == data
    assert [p.name for p in back.iterdir()] == ["data.bin"]

    (gateway_dir / "notes.txt").write_text("héllo\nwörld\n", encoding="utf-8")
    (gateway_dir / "sub").mkdir()
    table, out = magic(gateway_shell, capsys, "ls")
    assert out.splitlines()[0] == NOTE
    assert [(row["name"], row["type"]) for row in table.rows] == [("sub/", "directory"), ("data.bin", "file"), ("notes.txt", "file")]
    assert table.rows[1]["size"] == BIG
    text, _ = magic(gateway_shell, capsys, "cat notes.txt")
    assert text == "héllo\nwörld\n"
    with pytest.raises(UsageError, match="binary"):
        magic(gateway_shell, capsys, "cat data.bin")
    with pytest.raises(NotFound):
        magic(gateway_shell, capsys, "cat missing.txt")
    with pytest.raises(UsageError, match="outside"):
        magic(gateway_shell, capsys, "ls ..")


def test_gateway_never_overwrites_without_force(gateway_shell, gateway_dir, tmp_path, capsys):
    local = tmp_path / "a.txt"
    local.write_bytes(b"new")
    (gateway_dir / "a.txt").write_bytes(b"old")
    with pytest.raises(AlreadyExists):
        magic(gateway_shell, capsys, f"upload {local} a.txt")
    assert (gateway_dir / "a.txt").read_bytes() == b"old"
    with pytest.raises(AlreadyExists):
        magic(gateway_shell, capsys, f"download a.txt {local}")
    assert local.read_bytes() == b"new"
    magic(gateway_shell, capsys, f"upload {local} a.txt --force")
    assert (gateway_dir / "a.txt").read_bytes() == b"new"
    (gateway_dir / "a.txt").write_bytes(b"newer")
    magic(gateway_shell, capsys, f"download a.txt {local} --force")
    assert local.read_bytes() == b"newer"
    assert sorted(p.name for p in gateway_dir.iterdir()) == ["a.txt"]


# ---------------------------------------------------------------- forced on a Jupyter Server


@pytest.fixture
def kernel_files(kernel, jupyter_server):
    """The kernel path on the session's server, the kernel working in the server's root directory."""
    kernel.run(f"import os; os.chdir({jupyter_server.root_dir!r})", raise_on_error=True)
    return KernelFiles(kernel)


def test_forced_kernel_path_matches_the_contents_api_both_ways(kernel_files, server, remote_dir, tmp_path):
    data = os.urandom(BIG)
    local = tmp_path / "up.bin"
    local.write_bytes(data)
    model = kernel_files.upload(local, f"{remote_dir}/")
    assert (model["path"], model["size"]) == (f"{remote_dir}/up.bin", BIG)
    assert server.contents.read_bytes(f"{remote_dir}/up.bin") == data

    server.contents.upload(local, f"{remote_dir}/by-contents.bin")
    target = kernel_files.download(f"{remote_dir}/by-contents.bin", tmp_path / "down.bin")
    assert target.read_bytes() == data
    assert sorted(e["name"] for e in server.contents.list(remote_dir)) == ["by-contents.bin", "up.bin"]

    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    kernel_files.upload(empty, f"{remote_dir}/empty")
    assert server.contents.read_bytes(f"{remote_dir}/empty") == b""
    assert kernel_files.download(f"{remote_dir}/empty", tmp_path / "empty-back").read_bytes() == b""


def test_the_kernel_keeps_no_trace(kernel_files, kernel, remote_dir):
    names = "sorted(n for n in globals() if not n.startswith('_') or 'remote' in n)"
    before = kernel.run(names).result
    kernel_files.list(remote_dir)
    kernel_files.info(remote_dir)
    assert kernel.run(names).result == before  # not even the modules the kernel side imports
    assert kernel.run("len(In)").result == {"text/plain": "5"}  # "", the chdir and the three runs here


def test_interrupted_upload_leaves_no_part_file(kernel_files, server, remote_dir, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(BIG))

    def stop(done, total):
        if done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kernel_files.upload(local, f"{remote_dir}/big.bin", progress=stop)
    assert server.contents.list(remote_dir) == []


def test_interrupted_download_leaves_no_part_file(kernel_files, server, remote_dir, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(BIG))
    server.contents.upload(local, f"{remote_dir}/big.bin")
    here = tmp_path / "here"
    here.mkdir()

    def stop(done, total):
        if done < total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kernel_files.download(f"{remote_dir}/big.bin", here, progress=stop)
    assert list(here.iterdir()) == []


def test_a_corrupted_upload_is_refused_and_removed(kernel_files, server, jupyter_server, remote_dir, tmp_path):
    """Bytes changed on the kernel's side during the upload: the SHA-256 check refuses the file."""
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(BIG))
    folder = Path(jupyter_server.root_dir) / remote_dir

    def corrupt(done, total):
        if done < total:
            for part in folder.glob("*.part"):
                with part.open("r+b") as f:
                    f.write(b"X")

    with pytest.raises(ServerError, match="came out different"):
        kernel_files.upload(local, f"{remote_dir}/big.bin", progress=corrupt)
    assert server.contents.list(remote_dir) == []


def test_through_kernel_option_says_which_path(remote_shell, remote_dir, tmp_path, capsys):
    local = tmp_path / "x.txt"
    local.write_text("through\n")
    _, out = magic(remote_shell, capsys, f"upload {local} {remote_dir}/ --through-kernel")
    assert out.splitlines()[0] == "(through the kernel, in its working directory)"
    text, _ = magic(remote_shell, capsys, f"cat {remote_dir}/x.txt")
    assert text == "through\n"
    _, out = magic(remote_shell, capsys, f"ls {remote_dir}")
    assert "through the kernel" not in out  # the contents API, said nothing about it


def test_a_file_appearing_during_the_upload_is_not_replaced(kernel_files, server, jupyter_server, remote_dir, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(BIG))
    target = Path(jupyter_server.root_dir) / remote_dir / "big.bin"

    def someone_else_writes(done, total):
        if done == total:
            target.write_bytes(b"theirs")

    with pytest.raises(AlreadyExists, match="appeared"):
        kernel_files.upload(local, f"{remote_dir}/big.bin", progress=someone_else_writes)
    assert target.read_bytes() == b"theirs"
    assert [e["name"] for e in server.contents.list(remote_dir)] == ["big.bin"]


def test_a_file_changing_during_the_download_is_refused(kernel_files, server, jupyter_server, remote_dir, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(BIG))
    server.contents.upload(local, f"{remote_dir}/big.bin")
    source = Path(jupyter_server.root_dir) / remote_dir / "big.bin"
    here = tmp_path / "here"
    here.mkdir()

    def change(done, total):
        if done < total:
            with source.open("r+b") as f:
                f.write(b"changed")

    with pytest.raises(ServerError, match="came out different"):
        kernel_files.download(f"{remote_dir}/big.bin", here, progress=change)
    assert list(here.iterdir()) == []
