"""HTTP transport to one Jupyter server: auth header, TLS options, JSON, and error mapping."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from urllib3.exceptions import LocationParseError

from .auth import XSRF_COOKIE, ServerAuth
from .capabilities import Capabilities, detect
from .errors import (
    AuthenticationError,
    NotAJupyterServer,
    NotFound,
    NotPermitted,
    ServerError,
    ServerUnreachable,
    UsageError,
)
from .urls import ServerURL
from .wslog import RedactSecrets

log = logging.getLogger("remote_magic")
# urllib3 logs each request line at DEBUG: keep the one ?token= request (jupyverse) out of it
logging.getLogger("urllib3.connectionpool").addFilter(RedactSecrets())

DEFAULT_TIMEOUT = 30.0


class RestClient:
    """One ``requests.Session`` for one server; every failure becomes a named exception."""

    def __init__(
        self,
        url: ServerURL,
        token: str | None,
        *,
        verify: bool = True,
        ca_bundle: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.url = url
        self.timeout = timeout
        #: False once the server answered a kernel websocket handshake without selecting the
        #: subprotocol asked for (the classic Notebook server): later handshakes ask for none.
        self.selects_subprotocol = True
        #: True once the server accepted these credentials: a bare 403 is then not about them.
        self.credentials_proven = False
        self._capabilities: Capabilities | None = None
        self._xsrf_asked = False  # a server that gives no _xsrf cookie is asked once only
        self.http = requests.Session()
        self.auth = ServerAuth(token, self.http.cookies)
        self.http.auth = self.auth
        self.http.headers["User-Agent"] = "remote_magic"
        if ca_bundle:
            self.http.verify = ca_bundle
        elif not verify:
            self.http.verify = False
            warnings.warn(
                f"TLS certificate verification is off for {url}; use it only on a network you trust.",
                stacklevel=3,
            )
            _quiet_urllib3_insecure_warning()

    @property
    def verify(self) -> bool | str:
        return self.http.verify

    @property
    def capabilities(self) -> Capabilities:
        """What the server is and offers, asked once (see :mod:`remote_magic.capabilities`)."""
        if self._capabilities is None:
            self._capabilities = detect(self)
        return self._capabilities

    def login(self, password: str) -> None:
        """Log in with ``password`` as a browser does (``POST login``, a form with ``_xsrf``); the
        session cookie then authenticates REST and websockets. The password is not kept."""
        self._page("GET", "login")  # sets the _xsrf cookie the form must echo
        response = self._page("POST", "login", data={"password": password, XSRF_COOKIE: self.auth.xsrf or ""})
        if response.status_code == 404:
            raise NotAJupyterServer(f"{self.url} has no login page; it takes a token: use --token-env VAR.")
        location = response.headers.get("Location", "")
        if response.status_code not in (302, 303) or "/login" in location:
            raise AuthenticationError(f"{self.url} refused the password (HTTP {response.status_code}); check it and connect again.")
        self.auth.logged_in = True

    def token_cookie(self) -> None:
        """``GET api/kernelspecs?token=…`` once, for a server that takes the token only that way
        and answers with a cookie (jupyverse); the token is redacted from urllib3's log."""
        self._page("GET", "api/kernelspecs", params=self.auth.token_params())
        self.auth.token_cookie = True

    def status(self, *path: str) -> int:
        """The HTTP status of ``GET api/<path>``, redirects not followed, nothing raised for it."""
        return self._page("GET", "/".join(("api", *path))).status_code

    def _ensure_xsrf(self) -> None:
        """Without a token, Jupyter checks XSRF on writes and downloads: get the cookie, once."""
        if not self.auth.has_token and not self.auth.xsrf and not self._xsrf_asked:
            self._xsrf_asked = True
            self._page("GET", "login")  # sets _xsrf, whatever the status

    def _page(self, method: str, page: str, **options: Any) -> requests.Response:
        """``page`` under the base path, its answer left undecoded (the caller reads the status)."""
        response = self._send(method, str(self.url) + page, **options)
        response.close()
        return response

    def request(
        self,
        method: str,
        *path: str,
        json_body: Any = None,
        query: dict[str, str] | None = None,
        expect_json: bool = True,
        timeout: float | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Call ``api/<path>``; return the decoded JSON (None for an empty answer). What the server
        does not offer raises NotOffered without a request; ``response_headers`` gets the headers."""
        if self._capabilities is not None:
            self._capabilities.require(method, path, str(self.url))
        self._ensure_xsrf()
        url = self.url.api(*path, query=query)
        where = "api/" + "/".join(p.strip("/") for p in path if p)
        response = self._send(method, url, json=json_body, timeout=timeout)
        if response_headers is not None:
            response_headers.update(response.headers)
        return self._decode(response, method, where, expect_json)

    def at_once(self, calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Run each named call (requests to this server) at the same time: one round trip, not one
        each. Each name's answer, or the exception its call raised."""
        self._ensure_xsrf()  # once, before the threads

        def run(name: str) -> Any:
            try:
                return calls[name]()
            except Exception as exc:  # handed to the caller, who raises it in its turn
                return exc

        with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="remote_magic-rest") as pool:
            return dict(zip(calls, pool.map(run, calls)))

    def stream(self, url: str, where: str) -> requests.Response:
        """``GET url`` (a URL of this server outside ``api/``, e.g. ``files/…``) with the body left
        to stream; error statuses raise like :meth:`request`. Close the response when done."""
        self._ensure_xsrf()
        response = self._send("GET", url, stream=True)
        if response.status_code >= 300:
            with response:
                self._decode(response, "GET", where, expect_json=False)
        return response

    def _send(self, method: str, url: str, *, timeout: float | None = None, **options: Any) -> requests.Response:
        """One HTTP call; transport failures become named exceptions."""
        log.debug("%s %s", method, url)
        try:
            # verify per request: requests lets $REQUESTS_CA_BUNDLE override a session's setting
            return self.http.request(
                method, url, timeout=timeout or self.timeout, allow_redirects=False, verify=self.http.verify, **options
            )
        except requests.exceptions.SSLError:
            raise ServerUnreachable(
                f"TLS verification failed for {self.url}; pass a CA bundle (ca_bundle=/--ca-bundle) "
                "or, on a trusted network only, verify=False (--insecure)."
            ) from None
        except requests.exceptions.Timeout:
            raise ServerUnreachable(
                f"{self.url} did not answer within {timeout or self.timeout:g}s; check the server "
                "is up or raise the timeout."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ServerUnreachable(
                f"Cannot reach {self.url} ({_reason(exc)}); check the URL and that the server is running."
            ) from None
        except (requests.exceptions.InvalidURL, LocationParseError):
            raise UsageError(f"{self.url} is not a valid server address; check its host name and port.") from None

    def _decode(self, response: requests.Response, method: str, where: str, expect_json: bool) -> Any:
        status = response.status_code
        body = _json_or_none(response)
        reason = _message(body)
        if status == 401 or (status == 403 and reason in _BARE_403 and not self.credentials_proven):
            raise AuthenticationError(f"{self.url} refused the request (HTTP {status}): {self.auth.refused()}.")
        if status == 403:
            why = reason if reason not in _BARE_403 else "it forbids this request"
            raise NotPermitted(f"{self.url} refused {method} {where} (HTTP 403): {why}")
        if 300 <= status < 400:
            raise NotAJupyterServer(
                f"{self.url} redirected {where} to {response.headers.get('Location', '?')!r}; "
                "that is not the Jupyter REST API: check the URL and its base path."
            )
        if status == 404:
            detail = _message(body) or f"{where} does not exist"
            raise NotFound(f"Not found on {self.url}: {detail}.")
        if status in _PROXY_STATUSES and body is None:
            raise ServerUnreachable(
                f"{self.url} answered HTTP {status} ({_PROXY_STATUSES[status]}) from a proxy, not from Jupyter: "
                "the server behind the proxy is down or not answering; check it is running, then retry."
            )
        if status >= 400:
            if body is None and status != 500:
                raise NotAJupyterServer(
                    f"{self.url} answered {method} {where} with HTTP {status} and no Jupyter error; "
                    "is this a Jupyter server?"
                )
            detail = _message(body) or response.reason
            raise ServerError(f"{self.url} failed {method} {where} (HTTP {status}): {detail}")
        if not expect_json or status == 204 or not response.content:
            return body
        if body is None:
            raise NotAJupyterServer(
                f"{self.url} answered {where} with something that is not JSON; "
                "it is not a Jupyter server, or the base path is wrong."
            )
        return body

    def close(self) -> None:
        self.http.close()


#: What a 403 says when it says nothing more (a wrong token on Jupyter Server, or a forbidden listing).
_BARE_403 = {"", "Forbidden"}

#: Statuses a proxy (nginx, JupyterHub's proxy, a load balancer) answers for the server behind it.
_PROXY_STATUSES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def _message(body: Any) -> str:
    if isinstance(body, dict):
        text = str(body.get("message") or body.get("reason") or "").strip()
        return text.splitlines()[0] if text else ""
    return ""


def _reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in (
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("Failed to resolve", "unknown host"),
        ("Connection refused", "connection refused"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed by the server"),
    ):
        if needle in text:
            return reason
    return "connection failed"


def _quiet_urllib3_insecure_warning() -> None:
    import urllib3

    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
