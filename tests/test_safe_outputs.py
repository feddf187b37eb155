"""Safe outputs: the sanitizer on hostile HTML and bundles, and %%remote with the setting on and off
against a real remote kernel."""

from __future__ import annotations

import re

import pytest
from IPython.utils.capture import capture_output

import remote_magic
from remote_magic.sanitize import (
    HeldBack,
    notice,
    safe_bundle,
    sanitize_css,
    sanitize_html,
)

# Nothing of these may survive in what a page would render: code, handlers, script URLs, frames, fetches.
ACTIVE = re.compile(r"<\s*(script|iframe|object|embed|svg|math|meta|link|base|form)|\bon\w+\s*=|javascript:|https?:|//evil", re.I)


def clean(text: str) -> tuple[str, HeldBack]:
    held = HeldBack()
    return sanitize_html(text, held), held


@pytest.mark.parametrize(
    "hostile, kept, kind",
    [
        ("<ScRiPt>alert(1)</sCrIpT><b>ok</b>", "<b>ok</b>", "script"),
        ("<SCRIPT src=//evil.example/x.js></SCRIPT>after", "after", "script"),
        ("<script>if (a < b) document.write('</b>')</script>x", "x", "script"),
        ("<img src=x onerror=alert(1)>", '<img src="x">', "handler"),
        ("<details open ontoggle=alert(1)>d</details>", '<details open="">d</details>', "handler"),
        ('<a href="javascript:alert(1)">click</a>', "<a>click</a>", "js_url"),
        ('<a href="jav&#x09;ascript:alert(1)">c</a>', "<a>c</a>", "js_url"),
        ('<a href=" &#106;avascript&colon;alert(1)">c</a>', "<a>c</a>", "js_url"),
        ("<svg onload=alert(1)><circle r=1 /></svg>after", "after", "svg"),
        ('<iframe src="http://evil"></iframe>x', "x", "frame"),
        ("<object data=x><embed src=y></object>x", "x", "frame"),
        ('<a href="https://evil.example/">doc</a>', "<a>doc</a>", "remote"),
        ('<img src="//evil/x.png"><img src="/\\evil/x">', "<img><img>", "remote"),
        ('<div style="background:url(http://evil/x.png); color: red">x</div>', None, "remote"),
        ("<style>.a{background:URL( 'https://evil/x')}</style>", None, "remote"),
        ('<style>@import "http://evil/a.css";</style>', None, "remote"),
        ("<style>.a{background:u\\72l(http://evil/x)}</style>t", "t", "style"),
        ('<div style="width:expression(alert(1))">x</div>', "<div>x</div>", "style"),
        ('<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>n', "n", "element"),
        ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">m', "m", "element"),
        ('<form action="http://evil"><input onfocus=alert(1) autofocus>f</form>', "f", "remote"),
    ],
)
def test_hostile_html_loses_everything_active(hostile, kept, kind):
    text, held = clean(hostile)
    assert not ACTIVE.search(text), text
    if kept is not None:
        assert text == kept
    assert held[kind] >= 1, dict(held)


def test_inert_html_stays_as_it_was():
    table = (
        '<div><style scoped>.dataframe td {color: red; background: url(data:image/png;base64,AAAA)}</style>'
        '<table border="1" class="dataframe"><thead><tr><th>a &amp; b</th></tr></thead>'
        '<tbody><tr><td colspan="2" style="text-align: right">1 &lt; 2</td></tr></tbody></table>'
        '<a href="files/data.csv">data</a> <img src="data:image/png;base64,AAAA" width="10"></div>'
    )
    text, held = clean(table)
    assert text == table.replace("<style scoped>", "<style>")
    assert not held


def test_text_is_escaped_and_tags_are_balanced():
    text, _ = clean("<p>unclosed <b>bold <i>x</p> <notatag>kept</notatag> &lt;script&gt;")
    assert text == "<p>unclosed <b>bold <i>x</i></b></p> kept &lt;script&gt;"


def test_css_fetches_are_made_invalid():
    held = HeldBack()
    css = sanitize_css("a{background:url(http://e/x);cursor:url( //e/c ), auto}b{background:-webkit-image-set('x.png' 1x)}", held)
    assert "url(" not in css and "image-set(" not in css and held["remote"] == 3
    assert sanitize_css("a{background:url('data:image/gif;base64,R0lG')}", held) == "a{background:url('data:image/gif;base64,R0lG')}"


def test_bundles_keep_only_inert_types():
    held = HeldBack()
    kept = safe_bundle(
        {
            "text/plain": "<Figure>",
            "text/html": "<b>b</b><script>s()</script>",
            "application/javascript": "alert(1)",
            "application/vnd.jupyter.widget-view+json": {"model_id": "m"},
            "image/svg+xml": "<svg onload='alert(1)'/>",
            "image/png": "iVBOR",
            "application/vnd.plotly.v1+json": {},
        },
        held,
    )
    assert kept == {"text/plain": "<Figure>", "text/html": "<b>b</b>", "image/png": "iVBOR"}
    assert safe_bundle({"text/plain": "<Markdown>", "text/markdown": "[x](javascript:alert(1))"}, held) == {
        "text/plain": "[x](javascript:alert(1))"
    }
    assert notice(held) == (
        "remote_magic: safe outputs held back 1 JavaScript output, 1 widget view, 1 SVG image, "
        "1 output of another type, 1 Markdown/LaTeX rendering (source shown) and 1 script (RemoteMagic.safe_outputs)"
    )
    assert notice(HeldBack()) is None


# ---------------------------------------------------------------------------------- end to end

ACTIVE_CELL = (
    "%%remote\n"
    "from IPython.display import display, HTML, Javascript\n"
    "display(HTML('<b>visible</b><script>window.pwned = 1</script><img src=x onerror=\"pwn()\">'))\n"
    "display(Javascript('window.pwned = 2'))\n"
    "print('plain text')\n"
    "HTML('<i>result</i><script>window.pwned = 3</script>')\n"
)


@pytest.fixture
def run_active_cell(remote_shell):
    """Run ACTIVE_CELL; return (the cell's result, what was published, stdout, stderr)."""

    def run():
        with capture_output() as captured:
            result = remote_shell.run_cell(ACTIVE_CELL)
        assert result.success, result.error_in_exec
        return result, [output.data for output in captured.outputs], captured.stdout, captured.stderr

    yield run
    remote_shell.run_line_magic("config", "RemoteMagic.safe_outputs = False")


def test_safe_outputs_show_only_inert_output_and_say_what_they_held(remote_shell, run_active_cell):
    remote_shell.run_line_magic("config", "RemoteMagic.safe_outputs = True")
    result, published, out, err = run_active_cell()
    assert result.result.data["text/html"] == "<i>result</i>"
    shown = repr(published)
    assert "<b>visible</b>" in shown
    assert "pwned" not in shown and "onerror" not in shown and "application/javascript" not in shown
    assert "plain text" in out
    notices = [line for line in err.splitlines() if "safe outputs held back" in line]
    assert notices == [
        "remote_magic: safe outputs held back 1 JavaScript output, 2 scripts and 1 event handler (RemoteMagic.safe_outputs)"
    ]


def test_a_connection_can_ask_for_safe_outputs(remote_shell, jupyter_server, run_active_cell):
    remote_shell.run_line_magic(
        "remote", f"connect {jupyter_server.url} --token-env RM_TEST_TOKEN --name test --safe-outputs"
    )
    assert remote_magic.registry.current.safe_outputs
    result, published, _, err = run_active_cell()
    assert "pwned" not in repr(published) + repr(result.result.data)
    assert "safe outputs held back" in err


def test_without_safe_outputs_everything_arrives_unchanged(run_active_cell):
    result, (html, javascript), _, err = run_active_cell()
    assert "window.pwned = 3" in result.result.data["text/html"]
    assert html["text/html"] == '<b>visible</b><script>window.pwned = 1</script><img src=x onerror="pwn()">'
    assert javascript["application/javascript"] == "window.pwned = 2"
    assert "held back" not in err
