"""``%remote topology``: servers, sessions, kernels, processes and connection files, drawn as a
mermaid diagram (parsed here, and rendered in a real JupyterLab page) or as a text tree."""

from __future__ import annotations

import html
import re
import urllib.parse

import pytest
from barekernel import running_bare_kernel

from remote_magic.existing import connect_existing
from remote_magic.processes import redact_command
from remote_magic.topology import (
    THIS_NOTEBOOK,
    Kernel,
    ServerNode,
    Session,
    Topology,
    gather,
)
from remote_magic.topology_render import escape_label, mermaid, node_id, text_tree

_NODE = re.compile(r'^\s*(?:subgraph\s+)?([A-Za-z0-9_]+)(\[\(|\(\[|\{\{|\[)"(.*?)"')
_EDGE = re.compile(r"^\s*([A-Za-z0-9_]+)\s+(-->|-\.->|---)(?:\|([^|]*)\|)?\s+([A-Za-z0-9_]+)\s*$")

@pytest.fixture
def bare_kernel():
    """A kernel only its connection file knows."""
    yield from running_bare_kernel()


def parse_mermaid(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    """Node labels by id, and edges (from, label, to), of a flowchart; fails on a line it does not know."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes, edges = {}, set()
    for line in lines[1:]:
        if line.strip() == "end" or line.strip().startswith("style "):
            continue
        edge = _EDGE.match(line)
        if edge:
            edges.add((edge.group(1), edge.group(3) or "", edge.group(4)))
            continue
        node = _NODE.match(line)
        assert node, f"not a mermaid node or edge: {line!r}"
        label = node.group(3)
        assert '"' not in label, f"an unescaped quote ends the label early: {line!r}"
        nodes[node.group(1)] = label
    return nodes, edges


def test_labels_with_quotes_and_brackets_are_escaped():
    nasty = 'a "quoted" [x] {y} (z) <b>#1</b>|`t`.ipynb'
    topology = Topology(
        servers=[
            ServerNode(
                "http://127.0.0.1:1/",
                "Jupyter Server 2",
                sessions=[Session("s1", nasty, "notebook", "k1")],
                kernels=[Kernel("k1", "python3", "idle", 1, marks=["default of 'x'"])],
            )
        ]
    )
    text = mermaid(topology)
    nodes, edges = parse_mermaid(text)
    label = nodes[node_id("s", "s1")]
    for char in '"[]{}()<>|`':
        assert char not in label.replace("<br/>", "\n")
    assert escape_label('"') == "#34;" and "#91;x#93;" in label
    assert (node_id("s", "s1"), "uses", node_id("k", "k1")) in edges
    assert nasty in text_tree(topology)


def test_secrets_are_redacted_from_command_lines():
    argv = ["jupyter-lab", "--IdentityProvider.token=s3cret", "--password", "pw", "--url=http://h/?token=abc&x=1", "--port=1"]
    shown = " ".join(redact_command(argv))
    assert "s3cret" not in shown and "pw" not in shown.split() and "abc" not in shown
    assert "--port=1" in shown and "--IdentityProvider.token=<hidden>" in shown


@pytest.fixture
def shared_and_lonely(server, colleague):
    """Two sessions sharing one kernel, and a kernel without a session, on the test server."""
    first = colleague("topology/first.ipynb", kernel_name="python3")
    shared = first["kernel"]["id"]
    second = colleague("topology/second [copy] \"b\".ipynb", kernel_id=shared)
    lonely = server.start_kernel()
    yield first, second, lonely
    lonely.shutdown()


def test_diagram_of_everything_running_here(registry, jupyter_server, shared_and_lonely, bare_kernel):
    first, second, lonely = shared_and_lonely
    shared = first["kernel"]["id"]
    connection = registry.connect(jupyter_server.url, token=jupyter_server.token, name="test")
    connection.attach(shared)
    connect_existing(registry, bare_kernel.kernel_id, name="bare")

    topology = gather(registry, everything=True)
    text = mermaid(topology)
    nodes, edges = parse_mermaid(text)

    server_index = next(i for i, s in enumerate(topology.servers) if s.url == jupyter_server.url)
    srv = node_id("srv", server_index)
    assert jupyter_server.url in nodes[srv] and "connection 'test'" in nodes[srv]
    k_shared, k_lonely, k_bare = node_id("k", shared), node_id("k", lonely.id), node_id("k", bare_kernel.kernel_id)
    s_first, s_second = node_id("s", first["id"]), node_id("s", second["id"])
    assert {(srv, "runs", k_shared), (srv, "runs", k_lonely)} <= edges
    assert {(s_first, "uses", k_shared), (s_second, "uses", k_shared)} <= edges
    assert not any(to == k_lonely for _, label, to in edges if label == "uses"), "the lonely kernel has no session"
    assert "topology/first.ipynb" in nodes[s_first] and "#91;copy#93;" in nodes[s_second]
    assert "default of 'test'" in nodes[k_shared] and "default of 'bare'" in nodes[k_bare]

    # processes: the server's, each kernel's (found by its connection file), and who started the bare one
    node = topology.servers[server_index]
    assert node.process is not None and node.process.pid == jupyter_server.pid
    kernel = next(k for k in node.kernels if k.id == shared)
    assert kernel.process is not None and kernel.connection_file.endswith(f"kernel-{shared}.json")
    assert (node_id("p", node.process.pid), "", node_id("p", kernel.process.pid)) in edges
    assert (k_shared, "process", node_id("p", kernel.process.pid)) in edges
    assert (k_bare, "process", node_id("p", bare_kernel.pid)) in edges
    assert (node_id("p", __import__("os").getpid()), "", node_id("p", bare_kernel.pid)) in edges
    assert f"kernel-{bare_kernel.kernel_id}.json" in nodes[k_bare]

    tree = text_tree(topology)
    assert f"kernel {shared} (python3" in tree and "sessions: topology/first.ipynb, topology/second" in tree
    assert f"kernel {lonely.id} (python3" in tree and "no session" in tree
    for shown in (text, tree, repr(topology.to_dict())):
        assert jupyter_server.token not in shown


def test_only_the_current_connection_without_all(registry, jupyter_server, bare_kernel):
    registry.connect(jupyter_server.url, token=jupyter_server.token, name="test")
    topology = gather(registry)
    assert [s.url for s in topology.servers] == [jupyter_server.url] and topology.bare_kernels == []
    connect_existing(registry, bare_kernel.kernel_id, name="bare")
    topology = gather(registry)
    assert topology.servers == [] and [k.id for k in topology.bare_kernels] == [bare_kernel.kernel_id]


def test_the_magic_shows_a_tree_in_a_terminal(remote_shell):
    view = remote_shell.run_line_magic("remote", "topology")
    assert repr(view).startswith("server http://127.0.0.1:")
    assert view._repr_markdown_().startswith("```mermaid\nflowchart LR\n")


def test_notebook_cells_on_a_bare_kernel_and_the_diagram_rendered_in_jupyterlab(
    jupyter_server, shared_and_lonely, bare_kernel, tmp_path, monkeypatch
):
    """In a notebook run by nbclient: cells on the bare kernel, then ``topology --all``; the saved
    notebook opened in a real JupyterLab page renders the diagram (screenshot: artifacts/topology.png)."""
    from servers import execute_cells
    from test_browser import (
        ARTIFACTS,
        chromium_page,
        open_in_jupyterlab,
        start_jupyterlab,
    )

    first, _second, lonely = shared_and_lonely
    monkeypatch.setenv("RM_TEST_TOKEN", jupyter_server.token)
    cells = [
        f"%load_ext remote_magic\n%remote connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name lab",
        f"%remote connect --existing {bare_kernel.kernel_id} --name bare",
        "%%remote\nprint('hello from the bare kernel')\n6 * 7",
        "%remote topology --all",
    ]
    notebook = execute_cells(cells, tmp_path)

    ran = notebook.cells[2].outputs
    assert ran[0]["text"] == "hello from the bare kernel\n" and ran[1]["data"]["text/plain"] == "42"
    markdown = notebook.cells[3].outputs[0]["data"]["text/markdown"]
    assert markdown.startswith("```mermaid\nflowchart LR\n")
    nodes, _edges = parse_mermaid(markdown.split("\n", 1)[1].rsplit("```", 1)[0].strip())
    ours = [label for label in nodes.values() if THIS_NOTEBOOK in label]
    assert len(ours) == 1, "the notebook's own local kernel is marked"
    assert jupyter_server.token not in markdown

    (tmp_path / "jl").mkdir()
    lab = start_jupyterlab(tmp_path / "jl", {"topology.ipynb": notebook}, {})
    try:
        with chromium_page(1600, 1200, timeout=30_000, failure="topology-failure.png") as page:
            open_in_jupyterlab(page, lab, "topology.ipynb")
            diagram = page.locator(".jp-RenderedMermaid img").first  # JupyterLab shows the SVG as an image
            diagram.wait_for()
            svg = urllib.parse.unquote(diagram.get_attribute("src").split(",", 1)[1])
            assert "<svg" in svg
            svg_text = html.unescape(re.sub(r"<[^>]+>", "", svg.split("<svg", 1)[1]))
            diagram.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "topology.png"), full_page=True)
            for expected in (f"kernel {first['kernel']['id']}", f"kernel {lonely.id}", "session topology/first.ipynb",
                             f"kernel {bare_kernel.kernel_id}", "default of 'bare'", THIS_NOTEBOOK):
                assert expected in svg_text, f"{expected!r} is not in the rendered diagram"
    finally:
        lab.stop()
