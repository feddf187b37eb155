"""Files and notebooks on a real Jupyter Server: every Contents operation, as API and as magic."""

from __future__ import annotations

import builtins
import os
import shutil
from pathlib import Path

import pytest

from remote_magic.errors import AlreadyExists, NotFound, UsageError
from remote_magic.launch import LaunchedServer
from remote_magic.server import Server
from remote_magic.tables import Table


def on_disk(jupyter_server, path: str) -> Path:
    return Path(jupyter_server.root_dir) / path


def names(directory: Path) -> list[str]:
    """What a listing shows (the server keeps its checkpoints in a hidden folder)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def remote(remote_shell, line: str):
    return remote_shell.run_line_magic("remote", line)


# ---------------------------------------------------------------------------- the REST walk-through's notebook steps


def test_walkthrough_notebook_steps_through_the_api(server, remote_dir):
    contents = server.contents
    created = contents.new_notebook(remote_dir)  # POST: the server picks the name
    assert created["path"] == f"{remote_dir}/Untitled.ipynb" and created["type"] == "notebook"
    renamed = contents.rename(created["path"], f"{remote_dir}/sum.ipynb")  # PATCH {"path": new}
    assert renamed["path"] == f"{remote_dir}/sum.ipynb"
    assert not contents.exists(created["path"])
    cell = {"cell_type": "code", "id": "0", "metadata": {}, "source": ["1 + 1\n"], "outputs": [], "execution_count": 0}
    written = contents.append_cell(f"{remote_dir}/sum.ipynb", cell)
    assert written["id"] == "0" and written["source"] == ["1 + 1\n"]
    [read] = contents.cells(f"{remote_dir}/sum.ipynb")
    assert read["source"] == "1 + 1\n" and read["id"] == "0" and read["execution_count"] == 0


def test_appended_cells_keep_their_fields_and_get_unique_ids(server, remote_dir):
    path = f"{remote_dir}/keep.ipynb"
    server.contents.new_notebook(path)
    markdown = {
        "cell_type": "markdown",
        "id": "intro",
        "metadata": {"tags": ["keep"], "custom": {"a": 1}},
        "source": "![x](attachment:x.png)",
        "attachments": {"x.png": {"image/png": "iVBORw0KGgo="}},
    }
    code = {
        "cell_type": "code",
        "metadata": {"collapsed": True},
        "source": "print('hi')",
        "execution_count": 3,
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi\n"}],
    }
    added = server.contents.append_cells(path, markdown, code, "2 * 21", cell_type="code")
    again = server.contents.append_cell(path, {**markdown, "source": "same id"})
    cells = server.contents.cells(path)
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "code", "markdown"]
    assert cells[0]["attachments"] == markdown["attachments"]
    assert cells[0]["metadata"]["tags"] == ["keep"] and cells[0]["metadata"]["custom"] == {"a": 1}
    assert cells[1]["outputs"] == code["outputs"] and cells[1]["execution_count"] == 3
    assert cells[1]["metadata"]["collapsed"] is True
    assert cells[2]["source"] == "2 * 21" and cells[2]["outputs"] == [] and cells[2]["execution_count"] is None
    ids = [c["id"] for c in cells]
    assert ids[0] == "intro" and len(set(ids)) == 4 and again["id"] != "intro"
    assert [c["id"] for c in added] == ids[:3]
    assert "trusted" not in server.contents.read_text(path)  # the server's display-only flag is not saved
    with pytest.raises(UsageError, match="cell_type"):
        server.contents.append_cell(path, {"cell_type": "picture", "source": ""})
    assert len(server.contents.cells(path)) == 4


def test_magics_create_rename_append_and_cat(remote_shell, remote_dir, capsys):
    remote(remote_shell, f"new notebook {remote_dir}/")
    assert f"Created notebook {remote_dir}/Untitled.ipynb" in capsys.readouterr().out
    remote(remote_shell, f"mv {remote_dir}/Untitled.ipynb {remote_dir}/sum.ipynb")
    assert f"Renamed {remote_dir}/Untitled.ipynb to {remote_dir}/sum.ipynb" in capsys.readouterr().out
    remote(remote_shell, f"append-cell {remote_dir}/sum.ipynb '1 + 1'")
    remote(remote_shell, f"append-cell {remote_dir}/sum.ipynb '# Sum' --markdown")
    shown = remote(remote_shell, f"cat {remote_dir}/sum.ipynb")
    assert shown.splitlines()[0] == f"{remote_dir}/sum.ipynb: 2 cells"
    assert "── cell 1 · code ──\n1 + 1\n── cell 2 · markdown ──\n# Sum" in shown
    remote(remote_shell, f"new notebook {remote_dir}/named")
    assert f"Created notebook {remote_dir}/named.ipynb" in capsys.readouterr().out
    with pytest.raises(AlreadyExists, match="already exists"):
        remote(remote_shell, f"new notebook {remote_dir}/named.ipynb")
    remote(remote_shell, f"new file {remote_dir}/empty.txt")
    assert remote(remote_shell, f"cat {remote_dir}/empty.txt") == ""


def test_cat_shows_outputs_text_and_refuses_binary_and_directories(remote_shell, server, remote_dir, jupyter_server):
    path = f"{remote_dir}/out.ipynb"
    server.contents.new_notebook(path)
    server.contents.append_cells(
        path,
        {
            "cell_type": "code",
            "source": "x",
            "execution_count": 7,
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
                {"output_type": "execute_result", "execution_count": 7, "metadata": {}, "data": {"text/plain": "42", "text/html": "<b>42</b>"}},
                {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo="}},
                {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []},
            ],
        },
    )
    shown = remote(remote_shell, f"cat {path}")
    assert "── cell 1 · code · [7] ──\nx\n│ a\n│ b\n│ [text/html] 42\n│ [image/png]\n│ ValueError: bad" in shown
    server.contents.write_text(f"{remote_dir}/notes.txt", "héllo\nwörld\n")
    assert remote(remote_shell, f"cat {remote_dir}/notes.txt") == "héllo\nwörld\n"
    on_disk(jupyter_server, f"{remote_dir}/blob.bin").write_bytes(bytes(range(256)))
    with pytest.raises(UsageError, match="is binary .* %remote download"):
        remote(remote_shell, f"cat {remote_dir}/blob.bin")
    with pytest.raises(UsageError, match="is a directory"):
        remote(remote_shell, f"cat {remote_dir}")
    with pytest.raises(NotFound):
        remote(remote_shell, f"cat {remote_dir}/missing.txt")


# ---------------------------------------------------------------------------- directories, rename, delete


def test_mkdir_refuses_existing_and_makes_parents(remote_shell, server, remote_dir, capsys):
    remote(remote_shell, f"mkdir {remote_dir}/a")
    assert f"Created directory {remote_dir}/a/" in capsys.readouterr().out
    with pytest.raises(AlreadyExists):
        remote(remote_shell, f"mkdir {remote_dir}/a")
    remote(remote_shell, f"mkdir -p {remote_dir}/a/b/c")
    assert server.contents.get(f"{remote_dir}/a/b/c", content=False)["type"] == "directory"
    remote(remote_shell, f"mkdir -p {remote_dir}/a/b")  # like mkdir -p: already there is fine
    server.contents.write_text(f"{remote_dir}/file", "x")
    with pytest.raises(AlreadyExists, match="file"):
        remote(remote_shell, f"mkdir -p {remote_dir}/file")


def test_mv_never_overwrites_and_moves_into_directories(remote_shell, server, remote_dir, jupyter_server):
    contents = server.contents
    contents.write_text(f"{remote_dir}/one.txt", "one")
    contents.write_text(f"{remote_dir}/two.txt", "two")
    contents.mkdir(f"{remote_dir}/box")
    with pytest.raises(AlreadyExists, match="two.txt"):
        remote(remote_shell, f"mv {remote_dir}/one.txt {remote_dir}/two.txt")
    assert contents.read_text(f"{remote_dir}/two.txt") == "two" and contents.exists(f"{remote_dir}/one.txt")
    remote(remote_shell, f"mv {remote_dir}/one.txt {remote_dir}/box")
    assert on_disk(jupyter_server, f"{remote_dir}/box/one.txt").read_text() == "one"
    with pytest.raises(NotFound, match="new-dir"):  # a trailing / means "into that directory"
        remote(remote_shell, f"mv {remote_dir}/two.txt {remote_dir}/new-dir/")
    assert contents.read_text(f"{remote_dir}/two.txt") == "two"
    with pytest.raises(NotFound, match="missing"):
        remote(remote_shell, f"mv {remote_dir}/missing {remote_dir}/x")


def test_rm_asks_and_refuses_full_directories_without_recursive(remote_shell, server, remote_dir, monkeypatch, capsys):
    contents = server.contents
    contents.write_text(f"{remote_dir}/keep.txt", "x")
    with pytest.raises(UsageError, match="add --yes"):  # no one can answer here (stdin is captured)
        remote(remote_shell, f"rm {remote_dir}/keep.txt")
    assert contents.exists(f"{remote_dir}/keep.txt")
    answers = iter(["n", "y"])
    monkeypatch.setattr(builtins, "input", lambda prompt: next(answers))  # the user answering the prompt
    remote(remote_shell, f"rm {remote_dir}/keep.txt")
    assert "Not deleted." in capsys.readouterr().out and contents.exists(f"{remote_dir}/keep.txt")
    remote(remote_shell, f"rm {remote_dir}/keep.txt")
    assert not contents.exists(f"{remote_dir}/keep.txt")
    contents.mkdir(f"{remote_dir}/full/inner", parents=True)
    contents.write_text(f"{remote_dir}/full/inner/data.txt", "x")
    with pytest.raises(UsageError, match="directory with 1 entry; pass --recursive"):
        remote(remote_shell, f"rm --yes {remote_dir}/full")
    assert contents.exists(f"{remote_dir}/full/inner/data.txt")
    contents.mkdir(f"{remote_dir}/empty")
    remote(remote_shell, f"rm -y {remote_dir}/empty")
    assert not contents.exists(f"{remote_dir}/empty")
    remote(remote_shell, f"rm -y -r {remote_dir}/full")
    assert "Deleted directory" in capsys.readouterr().out
    assert not contents.exists(f"{remote_dir}/full")
    with pytest.raises(UsageError, match="root directory"):
        contents.delete("", recursive=True)


def answering(answer: str):
    """An ``input`` that answers the prompt with ``answer``; "EOF" stands for Ctrl-D (end of input)."""

    def answer_prompt(prompt: str) -> str:
        assert prompt.endswith("[y/N] ")
        if answer == "EOF":
            raise EOFError
        return answer

    return answer_prompt


@pytest.mark.parametrize("answer", ["", "   ", "n", "N", "no", "nope", "yep", "ye", "EOF"])
def test_rm_deletes_nothing_unless_the_answer_is_yes(remote_shell, server, remote_dir, monkeypatch, capsys, answer):
    server.contents.write_text(f"{remote_dir}/keep.txt", "x")
    monkeypatch.setattr(builtins, "input", answering(answer))
    if answer == "EOF":
        with pytest.raises(UsageError, match="add --yes"):
            remote(remote_shell, f"rm {remote_dir}/keep.txt")
    else:
        remote(remote_shell, f"rm {remote_dir}/keep.txt")
        assert "Not deleted." in capsys.readouterr().out
    assert server.contents.read_text(f"{remote_dir}/keep.txt") == "x"


@pytest.mark.parametrize("answer", ["y", "Y", "yes", " YES "])
def test_rm_deletes_on_yes(remote_shell, server, remote_dir, monkeypatch, capsys, answer):
    server.contents.write_text(f"{remote_dir}/gone.txt", "x")
    monkeypatch.setattr(builtins, "input", answering(answer))
    remote(remote_shell, f"rm {remote_dir}/gone.txt")
    assert f"Deleted file {remote_dir}/gone.txt" in capsys.readouterr().out
    assert not server.contents.exists(f"{remote_dir}/gone.txt")


@pytest.fixture(scope="module")
def no_trash_server(tmp_path_factory):
    """A server that deletes for good and refuses non-empty directories (delete_to_trash off)."""
    launched = LaunchedServer(
        str(tmp_path_factory.mktemp("no-trash-root")),
        extra_args=["--FileContentsManager.delete_to_trash=False"],
    )
    yield launched
    launched.stop()


def test_recursive_delete_empties_a_directory_the_server_will_not_remove_whole(no_trash_server):
    server = Server(no_trash_server.url, no_trash_server.token)
    try:
        server.contents.mkdir("tree/a/b", parents=True)
        server.contents.write_text("tree/a/b/deep.txt", "x")
        server.contents.write_text("tree/top.txt", "y")
        deleted = server.contents.delete("tree", recursive=True)
        assert deleted["type"] == "directory"
        assert not (Path(no_trash_server.root_dir) / "tree").exists()
    finally:
        server.close()


ROOT_SPELLINGS = [".", "./", "/", "sub/..", "sub/../", "./sub/..", " . "]


def test_rm_refuses_every_spelling_of_the_root_and_deletes_nothing(shell, no_trash_server, monkeypatch):
    root = Path(no_trash_server.root_dir)
    (root / "keep.txt").write_text("keep")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_text("inner")
    monkeypatch.setenv("RM_ROOT_TOKEN", no_trash_server.token)
    shell.run_line_magic("remote", f"connect {no_trash_server.url} --token-env RM_ROOT_TOKEN --name root")
    server = Server(no_trash_server.url, no_trash_server.token)
    try:
        for spelling in ROOT_SPELLINGS:
            with pytest.raises(UsageError, match="root directory; refusing to delete it"):
                shell.run_line_magic("remote", f"rm '{spelling}' --recursive --yes")
            with pytest.raises(UsageError, match="root directory; refusing to delete it"):
                server.contents.delete(spelling, recursive=True)
            assert (root / "keep.txt").read_text() == "keep", spelling
            assert (root / "sub" / "inner.txt").read_text() == "inner", spelling
    finally:
        server.close()
        (root / "keep.txt").unlink(missing_ok=True)
        shutil.rmtree(root / "sub", ignore_errors=True)


OUTSIDE = ["..", "../x", "a/../..", "./../etc", "sub/../../x"]


@pytest.mark.parametrize("path", OUTSIDE)
def test_paths_above_the_root_are_refused_as_outside_it(remote_shell, server, tmp_path, path):
    local = tmp_path / "f.txt"
    local.write_text("x")
    attempts = [
        lambda: remote(remote_shell, f"ls {path}"),
        lambda: remote(remote_shell, f"cat {path}"),
        lambda: remote(remote_shell, f"rm {path} -r --yes"),
        lambda: remote(remote_shell, f"download {path} {tmp_path}"),
        lambda: server.contents.upload(local, path),
        lambda: server.contents.write_text(path, "x"),
        lambda: server.contents.mkdir(path, parents=True),
        lambda: server.contents.checkpoints(path),
    ]
    for attempt in attempts:
        with pytest.raises(UsageError, match="outside the server's root directory"):
            attempt()
    assert os.listdir(tmp_path) == ["f.txt"]


def test_dot_segments_resolve_inside_the_root(remote_shell, server, remote_dir, jupyter_server, capsys):
    server.contents.write_text(f"{remote_dir}/a.txt", "alpha")
    assert remote(remote_shell, f"cat ./{remote_dir}/sub/../a.txt") == "alpha"
    table = remote(remote_shell, f"ls {remote_dir}/./x/..")
    assert table.column("name") == ["a.txt"] and table.title.endswith(f"/{remote_dir}")
    remote(remote_shell, f"mv {remote_dir}/a.txt {remote_dir}/x/../b.txt")
    assert on_disk(jupyter_server, f"{remote_dir}/b.txt").read_text() == "alpha"
    remote(remote_shell, f"rm {remote_dir}/y/../b.txt --yes")
    assert "Deleted file " + f"{remote_dir}/b.txt" in capsys.readouterr().out
    assert names(on_disk(jupyter_server, remote_dir)) == []


def test_writes_into_a_missing_directory_say_so_and_create_nothing(remote_shell, server, remote_dir, tmp_path, jupyter_server):
    local = tmp_path / "f.bin"
    local.write_bytes(b"x" * 10)
    attempts = [
        lambda: server.contents.upload(local, f"{remote_dir}/nowhere/f.bin"),
        lambda: server.contents.upload(local, f"{remote_dir}/nowhere/f.bin", chunk_size=4),
        lambda: server.contents.write_text(f"{remote_dir}/nowhere/a.txt", "x"),
        lambda: remote(remote_shell, f"new notebook {remote_dir}/nowhere/n.ipynb"),
        lambda: remote(remote_shell, f"new file {remote_dir}/nowhere/"),
        lambda: remote(remote_shell, f"mkdir {remote_dir}/nowhere/x"),
        lambda: remote(remote_shell, f"mv {remote_dir} {remote_dir}/nowhere/y"),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound, match="nowhere"):
            attempt()
    assert names(on_disk(jupyter_server, remote_dir)) == []


# ---------------------------------------------------------------------------- checkpoints


def test_checkpoint_list_and_restore(remote_shell, server, remote_dir, capsys):
    path = f"{remote_dir}/draft.txt"
    server.contents.write_text(path, "version 1")
    remote(remote_shell, f"checkpoint {path}")
    assert f"of {path} saved" in capsys.readouterr().out
    table = remote(remote_shell, f"checkpoints {path}")
    assert isinstance(table, Table) and len(table) == 1
    checkpoint_id = table[0]["id"]
    server.contents.write_text(path, "version 2", overwrite=True)
    remote(remote_shell, f"restore {path} {checkpoint_id}")
    assert server.contents.read_text(path) == "version 1"
    with pytest.raises(NotFound, match="no checkpoint 'nope'"):
        remote(remote_shell, f"restore {path} nope")
    server.contents.delete_checkpoint(path, checkpoint_id)
    assert "(no checkpoints" in repr(remote(remote_shell, f"checkpoints {path}"))


# ---------------------------------------------------------------------------- help and secrets


FILE_COMMANDS = ["ls", "cat", "mkdir", "mv", "rm", "upload", "download", "new", "append-cell", "checkpoint", "checkpoints", "restore"]


@pytest.mark.parametrize("name", FILE_COMMANDS)
def test_every_file_subcommand_has_help(remote_shell, capsys, name):
    remote(remote_shell, f"{name} --help")
    text = capsys.readouterr().out
    assert text.startswith(f"usage: %remote {name}") and "--conn" in text


def test_no_token_in_anything_the_file_commands_print(remote_shell, remote_dir, jupyter_server, tmp_path, capfd):
    local = tmp_path / "t.txt"
    local.write_text("token check")
    results = [
        remote(remote_shell, f"upload {local} {remote_dir}/"),
        remote(remote_shell, f"ls {remote_dir}"),
        remote(remote_shell, f"cat {remote_dir}/t.txt"),
        remote(remote_shell, f"download {remote_dir}/t.txt {tmp_path / 'u.txt'}"),
        remote(remote_shell, f"checkpoint {remote_dir}/t.txt"),
        remote(remote_shell, f"checkpoints {remote_dir}/t.txt"),
    ]
    for failing in (f"cat {remote_dir}/none", f"mv {remote_dir}/none {remote_dir}/x", f"upload {local} {remote_dir}/t.txt"):
        with pytest.raises(Exception) as info:
            remote(remote_shell, failing)
        assert jupyter_server.token not in str(info.value)
    out = capfd.readouterr()
    shown = out.out + out.err + "".join(repr(r) + getattr(r, "_repr_html_", lambda: "")() for r in results)
    assert "token check" in shown and jupyter_server.token not in shown
