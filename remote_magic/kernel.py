"""A handle on one remote kernel: run code, interrupt, restart, shut down."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .channel import KernelChannel
from .outputs import ExecutionResult, OutputList
from .protocol import Message
from .variables import pull, push

if TYPE_CHECKING:
    from .server import Server

InputFunction = Callable[[str, bool], str]


def ask_locally(prompt: str, password: bool) -> str:
    """Answer a remote ``input()``/``getpass()`` at the local terminal or notebook."""
    return getpass.getpass(prompt) if password else input(prompt)


class RemoteKernel:
    """A kernel on a server. The websocket opens on first use and is shared by all handles."""

    def __init__(self, server: Server, kernel_id: str):
        self.server = server
        self.id = kernel_id

    def __repr__(self) -> str:
        return f"<RemoteKernel {self.id} on {self.server.url}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteKernel) and (other.server, other.id) == (self.server, self.id)

    def __hash__(self) -> int:
        return hash((id(self.server), self.id))

    @property
    def channel(self) -> KernelChannel:
        return self.server.channel(self.id)

    def model(self) -> dict[str, Any]:
        """The server's model: id, name, execution_state, last_activity, connections."""
        return self.server.kernels.get(self.id)

    def execute(self, code: str, **options: Any) -> Iterator[Message]:
        """Yield the messages of one execution (see :meth:`KernelChannel.execute`).
        A local Ctrl-C interrupts the remote kernel and the outputs keep coming."""
        options.setdefault("on_keyboard_interrupt", self.interrupt)
        return self.channel.execute(code, **options)

    def stream(
        self,
        code: str,
        sink: Callable[[Message], None],
        *,
        input: InputFunction | None = ask_locally,
        **options: Any,
    ) -> dict[str, Any]:
        """Run ``code``, handing every message to ``sink`` as it arrives; return the
        ``execute_reply`` content. ``input`` answers the remote ``input()``/``getpass()``
        (None refuses stdin); if it fails, the remote kernel is interrupted rather than left waiting.
        """
        reply: dict[str, Any] = {}
        for msg in self.execute(code, allow_stdin=input is not None, **options):
            sink(msg)
            if msg["msg_type"] == "input_request":
                self._answer(msg, input)
            elif msg["channel"] == "shell":
                reply = msg["content"]
        return reply

    def _answer(self, request: Message, input: InputFunction) -> None:
        content = request["content"]
        try:
            value = input(content.get("prompt", ""), bool(content.get("password")))
        except (Exception, KeyboardInterrupt) as exc:
            print(f"Could not ask for the remote input here ({type(exc).__name__}); interrupting the remote kernel.", file=sys.stderr)
            self.interrupt()
            return
        self.channel.send_input(value, request)

    def run(
        self,
        code: str,
        *,
        on_message: Callable[[Message], None] | None = None,
        raise_on_error: bool = False,
        **options: Any,
    ) -> ExecutionResult:
        """Run ``code`` and collect its outputs as nbformat dicts.

        ``on_message`` sees every message as it arrives; ``raise_on_error`` raises
        :class:`~remote_magic.errors.RemoteExecutionError` when the remote code raised. Other
        options are those of :meth:`stream` and :meth:`KernelChannel.execute` (``timeout``, ...).
        """
        outputs = OutputList()

        def collect(msg: Message) -> None:
            outputs.add(msg)
            if on_message is not None:
                on_message(msg)

        result = ExecutionResult(outputs.outputs, self.stream(code, collect, **options))
        return result.raise_for_error() if raise_on_error else result

    def push(self, values: dict[str, Any], **options: Any) -> None:
        """Assign ``values`` (name -> value) in the kernel's namespace (see :func:`remote_magic.variables.push`)."""
        push(self, values, **options)

    def pull(self, names: str | list[str], **options: Any) -> Any:
        """The value of the remote variable ``names``, or a dict of them for a list of names (see
        :func:`remote_magic.variables.pull`)."""
        values = pull(self, [names] if isinstance(names, str) else names, **options)
        return values[names] if isinstance(names, str) else values

    def interrupt(self) -> None:
        self.server.kernels.interrupt(self.id)

    def restart(self) -> None:
        """Restart the kernel (its state is lost) and wait until it answers again."""
        self.server.kernels.restart(self.id)
        channel = self.channel
        if channel.is_open:
            channel.wait_ready(timeout=60)  # output sent before the server re-subscribes is lost

    def shutdown(self) -> None:
        """Stop the kernel on the server and close its websocket."""
        self.server.forget_channel(self.id)
        self.server.kernels.shutdown(self.id)
