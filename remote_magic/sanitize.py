"""Safe outputs: the inert part of a remote kernel's MIME bundles. Pure functions, stdlib only.

A notebook page runs an output's HTML and JavaScript with the local server's session. For a
kernel not fully trusted, :func:`safe_bundle` keeps plain text, JSON, PNG/JPEG/GIF images and HTML
rebuilt from an allowlist of tags and attributes; whatever could run code or fetch from elsewhere
is left out and counted, and :func:`notice` says so in one line.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from html.parser import HTMLParser
from typing import Any

HeldBack = Counter  # what was left out, by kind (keys of _NOUNS)

INERT_TYPES = frozenset({"text/plain", "application/json", "image/png", "image/jpeg", "image/gif"})
#: Rendered by Markdown or MathJax, which pass raw HTML and links through: shown as their source.
SOURCE_TYPES = ("text/markdown", "text/latex")
JAVASCRIPT_TYPES = frozenset(
    {"application/javascript", "text/javascript", "application/x-javascript", "application/ecmascript", "text/ecmascript"}
)
WIDGET_TYPE = "application/vnd.jupyter.widget-view+json"

_NOUNS = {
    "javascript": ("JavaScript output", "JavaScript outputs"),
    "widget": ("widget view", "widget views"),
    "svg": ("SVG image", "SVG images"),
    "mime": ("output of another type", "outputs of other types"),
    "source": ("Markdown/LaTeX rendering (source shown)", "Markdown/LaTeX renderings (source shown)"),
    "script": ("script", "scripts"),
    "handler": ("event handler", "event handlers"),
    "js_url": ("javascript: URL", "javascript: URLs"),
    "remote": ("remote resource or link", "remote resources or links"),
    "frame": ("embedded frame or object", "embedded frames or objects"),
    "element": ("other active element", "other active elements"),
    "style": ("unsafe style", "unsafe styles"),
}


def safe_bundle(data: dict[str, Any], held: HeldBack) -> dict[str, Any]:
    """The inert part of a MIME bundle; each part left out is counted in ``held``."""
    kept: dict[str, Any] = {}
    source = None
    for mime, value in data.items():
        if mime in INERT_TYPES:
            kept[mime] = value
        elif mime == "text/html":
            kept[mime] = sanitize_html(value if isinstance(value, str) else "".join(value), held)
        elif mime in SOURCE_TYPES:
            source = value if isinstance(value, str) else "".join(value)
            held["source"] += 1
        elif mime in JAVASCRIPT_TYPES:
            held["javascript"] += 1
        elif mime == WIDGET_TYPE:
            held["widget"] += 1
        else:  # SVG can carry scripts and html.parser cannot rebuild it faithfully (it is case-sensitive)
            held["svg" if mime == "image/svg+xml" else "mime"] += 1
    if source is not None:
        kept["text/plain"] = source  # better than the "<IPython.core.display.Markdown object>" repr
    return kept


def notice(held: HeldBack) -> str | None:
    """One line saying what safe outputs held back, or None if nothing."""
    parts = [f"{held[kind]} {nouns[held[kind] != 1]}" for kind, nouns in _NOUNS.items() if held[kind]]
    if not parts:
        return None
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"remote_magic: safe outputs held back {listed} (RemoteMagic.safe_outputs)"


def sanitize_html(text: str, held: HeldBack) -> str:
    """``text`` rebuilt from allowed tags and attributes only; what was left out is counted."""
    parser = _Sanitizer(held)
    parser.feed(text)
    parser.close()
    return "".join(parser.out)


def sanitize_css(css: str, held: HeldBack) -> str:
    """``css`` without fetches: ``url()`` (other than image data) becomes ``none``, ``@import`` goes,
    ``image-set()`` and the like become invalid (browsers drop them); "" for CSS with escapes or ``<``,
    which can hide either."""
    if _CSS_UNSAFE.search(css):
        held["style"] += 1
        return ""
    fetches = 0
    for pattern, replacement in _CSS_FETCHES:
        css, count = pattern.subn(replacement, css)
        fetches += count
    if fetches:
        held["remote"] += fetches
    return css


_CSS_UNSAFE = re.compile(r"[\\<\x00-\x08\x0b\x0e-\x1f\x7f]|expression\s*\(", re.IGNORECASE)
_NOT_IMAGE_DATA = r"(?!\s*['\"]?\s*data:image/)"
_CSS_FETCHES = [
    (re.compile(r"@import[^;]*;?", re.IGNORECASE), ""),
    (re.compile(rf"(?<![\w-])url\s*\({_NOT_IMAGE_DATA}(?:\s*\"[^\"]*\"|\s*'[^']*'|[^)]*)\s*\)", re.IGNORECASE), "none"),
    (re.compile(rf"(?<![\w-])(?:url\s*\({_NOT_IMAGE_DATA}|(?:-webkit-)?(?:image-set|image|cross-fade|src)\s*\()", re.IGNORECASE), "x-held-back("),
]

_ALLOWED_TAGS = frozenset(
    "a abbr b bdi bdo blockquote br caption center cite code col colgroup dd del details dfn div dl dt em "
    "figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike "
    "strong sub summary sup table tbody td tfoot th thead time tr tt u ul var wbr".split()
)
_ALLOWED_ATTRIBUTES = frozenset(
    "abbr align alt bgcolor border cellpadding cellspacing class color colspan datetime dir face headers height "
    "hidden id lang nowrap open reversed role rowspan rules scope size span start summary title type valign "
    "value width".split()
)
_KEPT_URLS = {("a", "href"), ("img", "src")}  # with a local URL (or image data for img)
_URL_ATTRIBUTES = frozenset(
    "action background cite codebase data dynsrc formaction href icon longdesc lowsrc manifest ping poster "
    "profile src srcset usemap xlink:href".split()
)
_VOID = frozenset("area base br col embed frame hr img input keygen link meta param source track wbr".split())
#: Dropped with everything inside them, and counted under their kind (None: not counted).
_DROPPED: dict[str, str | None] = {
    "script": "script",
    **dict.fromkeys("iframe frame frameset object embed applet portal fencedframe noembed noframes".split(), "frame"),
    "svg": "svg",
    **dict.fromkeys(
        "math template meta base link audio video source track canvas noscript xmp plaintext".split(), "element"
    ),
    "head": None,
    "title": None,
}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")
_IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif)[;,]")


def _url_kind(value: str) -> str:
    """"js_url", "remote", "image" (PNG/JPEG/GIF data) or "local", read as a browser would."""
    url = re.sub(r"[\x00-\x20\x7f]+", "", value).replace("\\", "/").lower()
    if url.startswith(("javascript:", "vbscript:", "livescript:")):
        return "js_url"
    if _IMAGE_DATA.match(url):
        return "image"
    if url.startswith("//") or _SCHEME.match(url):
        return "remote"
    return "local"


class _Sanitizer(HTMLParser):
    """Writes back only allowed tags and attributes, with text and values escaped, so the browser
    parses exactly what was kept. Tags not allowed are unwrapped (their text stays), except the
    active ones of ``_DROPPED``, which go with their content."""

    def __init__(self, held: HeldBack):
        super().__init__(convert_charrefs=True)
        self.held = held
        self.out: list[str] = []
        self._open: list[str] = []
        self._skipping: str | None = None  # the dropped element being skipped
        self._depth = 0  # nesting of that element inside itself
        self._style: list[str] | None = None  # the text of an open <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            self._depth += tag == self._skipping
        elif tag in _DROPPED:
            if _DROPPED[tag]:
                self.held[_DROPPED[tag]] += 1
            if tag not in _VOID:
                self._skipping, self._depth = tag, 1
        elif tag == "style":
            self._style = []
        else:
            kept = self._attributes(tag, attrs)  # also counts what an unwrapped tag held
            if tag in _ALLOWED_TAGS:
                self.out.append(f"<{tag}" + "".join(f' {name}="{html.escape(value)}"' for name, value in kept) + ">")
                if tag not in _VOID:
                    self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            self._depth -= tag == self._skipping
            if not self._depth:
                self._skipping = None
        elif tag == "style" and self._style is not None:
            self._end_style()
        elif tag in self._open:
            while self._open:  # also close what was left open inside it
                closed = self._open.pop()
                self.out.append(f"</{closed}>")
                if closed == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._style is not None:
            self._style.append(data)
        else:
            self.out.append(html.escape(data, quote=False))

    def close(self) -> None:
        super().close()
        if self._style is not None and not self._skipping:
            self._end_style()
        self.out.extend(f"</{tag}>" for tag in reversed(self._open))
        self._open.clear()

    def _end_style(self) -> None:
        css = sanitize_css("".join(self._style or []), self.held)
        self._style = None
        if css.strip():
            self.out.append(f"<style>{css}</style>")

    def _attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
        kept = []
        for name, raw in attrs:
            value = raw or ""
            if name.startswith("on"):
                self.held["handler"] += 1
            elif name in _URL_ATTRIBUTES:
                kind = _url_kind(value)
                if kind in ("js_url", "remote"):
                    self.held[kind] += 1
                elif (tag, name) in _KEPT_URLS and (kind == "local" or tag == "img"):
                    kept.append((name, value))
            elif name == "style":
                css = sanitize_css(value, self.held)
                if css.strip():
                    kept.append((name, css))
            elif name in _ALLOWED_ATTRIBUTES or name.startswith("aria-"):
                kept.append((name, value))
        return kept
