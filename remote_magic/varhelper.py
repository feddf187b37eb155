"""The kernel side of variable transfers: a comm target, run inside the remote kernel.

Installed by :mod:`.variables` together with :mod:`.varcodec` (their sources, in a private module
``_remote_magic_variables``, never in the user's namespace). One comm per transfer:

* pull: ``comm_open {op: "pull", names, pickle, max_bytes, chunk_bytes}``, answered with
  ``{manifest, total}``, then ``{chunk: true}`` messages whose buffers are the values' bytes back to
  back, then ``comm_close``; or with ``{error, reason}`` and ``comm_close``;
* push: ``comm_open {op: "push", manifest, pickle}``, answered with ``{ready: true}`` (or an error)
  once the kernel has what decoding needs; then chunks and ``{done: true}`` from the client, answered
  with ``{ok: true}`` once every value is assigned, and ``comm_close``.
"""

try:
    from .varcodec import (
        CHUNK_BYTES,
        Assembler,
        Refused,
        decode,
        encode,
        missing_libraries,
        pieces,
    )
except ImportError:  # in the kernel: installed in one module after varcodec's source, whose names these are
    pass

TARGET = "remote_magic.variables"
LIMIT_ADVICE = "raise it with max_bytes=, or in IPython %config RemoteMagic.max_variable_bytes = N"
PULL_ADVICE = (
    "pull it with --pickle (pickle=True) only if you trust this kernel: unpickling runs code of its making on your side"
)


def _namespace():
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns
    import __main__

    return __main__.__dict__


def _check_names(names):
    import keyword

    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise Refused(f"{str(name)[:40]!r} is not a valid variable name.", "name")


def _fail(comm, error):
    reason = error.reason if isinstance(error, Refused) else "failed"
    message = str(error) if isinstance(error, Refused) else f"{type(error).__name__}: {error}"
    comm.send({"error": message, "reason": reason})
    comm.close()


def _opened(comm, msg):
    request = msg["content"]["data"]
    try:
        if request.get("op") == "pull":
            _send_values(comm, request)
        elif request.get("op") == "push":
            _receive_values(comm, request)
        else:
            raise Refused("unknown variable operation.", "malformed")
    except Exception as error:  # the client gets every failure as an answer, never a silence
        _fail(comm, error)


def _send_values(comm, request):
    names = request["names"]
    _check_names(names)
    namespace = _namespace()
    manifest, buffers = [], []
    for name in names:
        if name not in namespace:
            raise Refused(f"The remote kernel has no variable {name!r}.", "missing")
        spec, own = encode(namespace[name], f"Remote {name!r}", bool(request.get("pickle")), PULL_ADVICE)
        manifest.append({"name": name, "spec": spec, "sizes": [memoryview(b).nbytes for b in own]})
        buffers += own
    total = sum(sum(entry["sizes"]) for entry in manifest)
    if total > request["max_bytes"]:
        listed = ", ".join(repr(name) for name in names)
        raise Refused(f"Remote {listed}: {total:,} bytes, over the limit of {request['max_bytes']:,} ({LIMIT_ADVICE}).", "size")
    comm.send({"manifest": manifest, "total": total})
    for chunk in pieces(buffers, int(request.get("chunk_bytes") or CHUNK_BYTES)):
        comm.send({"chunk": True}, buffers=chunk)
    comm.close()


def _receive_values(comm, request):
    manifest, allow_pickle = request["manifest"], bool(request.get("pickle"))
    _check_names([entry["name"] for entry in manifest])
    for entry in manifest:
        if entry["spec"].get("kind") == "pickle" and not allow_pickle:
            raise Refused("a pickled value was refused: it was not sent with --pickle.", "pickle")
        missing = missing_libraries(entry["spec"])
        if missing:
            raise Refused(
                f"The remote kernel lacks {', '.join(missing)}, which receiving {entry['name']} needs; install it "
                "there (or send the value in another form).",
                "library",
            )
    assembler = Assembler([size for entry in manifest for size in entry["sizes"]])

    def on_msg(msg):
        data = msg["content"]["data"]
        try:
            if data.get("chunk"):
                assembler.feed(msg["buffers"])
            elif data.get("done"):
                _assign(manifest, assembler, allow_pickle)
                comm.send({"ok": True})
                comm.close()
        except Exception as error:
            _fail(comm, error)

    comm.on_msg(on_msg)
    comm.send({"ready": True})


def _assign(manifest, assembler, allow_pickle):
    if not assembler.complete:
        raise Refused(f"only {assembler.done} of {assembler.total} bytes arrived.", "malformed")
    values, buffers = {}, list(assembler.buffers)
    for entry in manifest:
        own, buffers = buffers[: len(entry["sizes"])], buffers[len(entry["sizes"]) :]
        values[entry["name"]] = decode(entry["spec"], own, allow_pickle)
    _namespace().update(values)  # all or nothing: no value is assigned unless every one decoded


def install():
    """Register the comm target (again: a kernel restart forgets it)."""
    try:
        from IPython import get_ipython

        manager = get_ipython().kernel.comm_manager
    except (ImportError, AttributeError):
        from comm import get_comm_manager

        manager = get_comm_manager()
    manager.register_target(TARGET, _opened)
