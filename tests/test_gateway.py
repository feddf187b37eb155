"""The same engine against a real Jupyter Kernel Gateway (token auth, kernel listing forbidden as by default)."""

from __future__ import annotations

import pytest
from servers import kernel_gateway, new_token

from remote_magic import AuthenticationError, NotFound, Registry, Server


@pytest.fixture(scope="module")
def gateway():
    token = new_token()
    kg = kernel_gateway(token)
    yield kg
    kg.stop()


@pytest.fixture(scope="module", params=["legacy", "auto"])
def gateway_kernel(request, gateway):
    server = Server(gateway.url, gateway.token, protocol=request.param)
    kernel = server.start_kernel()
    yield kernel
    kernel.shutdown()
    server.close()


def test_connect_to_a_gateway(gateway):
    registry = Registry()
    try:
        conn = registry.connect(gateway.url, token=gateway.token, name="kg")
        assert registry.current is conn
        assert conn.server.version()
        assert conn.server.me() is None  # no /api/me on a gateway: no identity, no error
        assert conn.server.kernelspecs.default() == "python3"
    finally:
        registry.clear()


def test_wrong_token_on_a_gateway(gateway):
    registry = Registry()
    with pytest.raises(AuthenticationError) as info:
        registry.connect(gateway.url, token="wrong-token")
    assert "\n" not in str(info.value) and "wrong-token" not in str(info.value)
    assert len(registry) == 0


def test_gateway_runs_code_with_every_kind_of_output(gateway_kernel):
    result = gateway_kernel.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\n6 * 7")
    assert result.ok
    assert result.text() == "out\n" and result.text("stderr") == "err\n"
    assert result.result == {"text/plain": "42"}
    failed = gateway_kernel.run("raise ValueError('bad value')")
    assert failed.status == "error"
    assert failed.outputs[-1]["ename"] == "ValueError" and failed.error().evalue == "bad value"


def test_gateway_protocol_and_state(gateway_kernel):
    gateway_kernel.run("kept = 'yes'")
    assert gateway_kernel.run("kept").result == {"text/plain": "'yes'"}
    chosen = gateway_kernel.channel.protocol
    assert chosen in ("legacy", "v1")
    if gateway_kernel.server.protocol == "legacy":
        assert chosen == "legacy"


def test_gateway_input_and_interrupt(gateway_kernel):
    answered = gateway_kernel.run("print(input('? ') * 2)", input=lambda prompt, password: "ab")
    assert answered.text().endswith("abab\n")
    import threading

    threading.Timer(0.5, gateway_kernel.interrupt).start()
    interrupted = gateway_kernel.run("import time\ntime.sleep(30)", timeout=20)
    assert interrupted.error().ename == "KeyboardInterrupt"


def test_gateway_kernel_started_by_a_connection_is_stopped_with_it(gateway):
    registry = Registry()
    conn = registry.connect(gateway.url, token=gateway.token, name="kg")
    kernel = conn.start_kernel()
    assert conn.run("1 + 1").result == {"text/plain": "2"}
    # The gateway forbids listing kernels; removal must still find and stop the one started here.
    assert registry.remove("kg") == [kernel.id]
    check = Server(gateway.url, gateway.token)
    try:
        with pytest.raises(NotFound):
            check.kernels.get(kernel.id)
    finally:
        check.close()


def test_missing_kernel_on_a_gateway(gateway):
    server = Server(gateway.url, gateway.token)
    try:
        with pytest.raises(NotFound):
            server.kernel("00000000-0000-4000-8000-000000000000")
    finally:
        server.close()
