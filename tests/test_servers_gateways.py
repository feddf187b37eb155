"""Kernel Gateway and Enterprise Gateway (its own venv, local kernels): no files, no listings,
kernels asked for by id; on Enterprise Gateway, KERNEL_USERNAME and KERNEL_* at kernel start."""

from __future__ import annotations

import pytest
from servers import (
    check_documented,
    enterprise_gateway,
    exercise,
    kernel_gateway,
    new_token,
    run_in_notebook,
)

from remote_magic import NotOffered, NotPermitted, Registry, Server
from remote_magic.panel_model import PanelModel

GATEWAY = {"contents": False, "sessions": False, "kernel_listing": False}
DOCUMENTED = {
    "kernel-gateway": "Jupyter Kernel Gateway 3",
    "enterprise-gateway": "Jupyter Enterprise Gateway 3 (local kernels)",
}


@pytest.fixture(scope="module", params=["kernel-gateway", "enterprise-gateway"])
def gateway(request):
    token = new_token()
    process = kernel_gateway(token) if request.param == "kernel-gateway" else enterprise_gateway(token)
    process.kind = request.param
    yield process
    process.stop()


@pytest.fixture
def token_env(gateway, monkeypatch):
    monkeypatch.setenv("RM_GW_TOKEN", gateway.token)
    return "RM_GW_TOKEN"


def test_what_a_user_does_on_a_gateway(gateway, token_env, shell, capsys):
    line = exercise(shell, capsys, f"{gateway.url} --token-env {token_env}", offers=GATEWAY)
    assert "Gateway" in line and "kernels not listed" in line and "token" not in line


def test_gateway_kind_and_capabilities(gateway):
    server = Server(gateway.url, gateway.token)
    try:
        assert server.capabilities.kind == gateway.kind
        assert server.capabilities.offers() == GATEWAY
        kernel = server.start_kernel()
        kernel.run("pass")
        check_documented(DOCUMENTED[gateway.kind], server, kernel.channel.protocol)
        kernel.shutdown()
        with pytest.raises(NotOffered) as info:
            server.contents.list("")
        assert "\n" not in str(info.value) and "does not offer files" in str(info.value)
    finally:
        server.close()


def test_kernels_known_by_id_are_listed_and_in_the_panel(gateway):
    other = Server(gateway.url, gateway.token)
    registry = Registry()
    foreign = other.start_kernel()  # started by someone else: this connection cannot see it
    try:
        conn = registry.connect(gateway.url, token=gateway.token, name="gw")
        mine = conn.start_kernel()
        assert [k["id"] for k in conn.server.kernels.list()] == [mine.id]
        conn.attach(foreign.id)  # asked for by id, as gateways allow
        assert {k["id"] for k in conn.server.kernels.list()} == {mine.id, foreign.id}
        panel = PanelModel(registry)
        panel.refresh()
        assert panel.refresh_error == ""
        assert {row["id"] for row in panel.kernels} == {mine.id, foreign.id}
        assert registry.remove("gw") == [mine.id]  # the attached kernel is left running
        assert other.kernels.get(foreign.id)
    finally:
        registry.clear()
        foreign.shutdown()
        other.close()


def test_kernel_environment_on_a_gateway(gateway, monkeypatch):
    monkeypatch.setenv("KERNEL_EXTRA_SETTING", "from-the-client")
    server = Server(gateway.url, gateway.token, kernel_username="alice")
    kernel = server.start_kernel()
    try:
        seen = kernel.run("import os\n(os.environ.get('KERNEL_USERNAME'), os.environ.get('KERNEL_EXTRA_SETTING'))")
        assert seen.result == {"text/plain": "('alice', 'from-the-client')"}
    finally:
        kernel.shutdown()
        server.close()


@pytest.mark.parametrize("gateway", ["enterprise-gateway"], indirect=True)  # it alone authorizes users
def test_an_unauthorized_user_gets_the_gateways_reason_in_one_line(gateway):
    registry = Registry()
    try:
        conn = registry.connect(gateway.url, token=gateway.token, kernel_username="mallory")
        with pytest.raises(NotPermitted) as info:
            conn.run("1")
        message = str(info.value)
        assert "mallory" in message and "not authorized" in message and "\n" not in message
        assert "token" not in message
    finally:
        registry.clear()


def test_from_a_notebook(gateway, token_env, tmp_path):
    run_in_notebook(tmp_path, f"{gateway.url} --token-env {token_env}")
