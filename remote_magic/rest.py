"""HTTP transport to one Jupyter server: auth header, TLS options, JSON, and error mapping."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import requests
from urllib3.exceptions import LocationParseError

from .errors import (
    AuthenticationError,
    NotAJupyterServer,
    NotFound,
    ServerError,
    ServerUnreachable,
    UsageError,
)
from .urls import ServerURL

log = logging.getLogger("remote_magic")

DEFAULT_TIMEOUT = 30.0


class TokenAuth(requests.auth.AuthBase):
    """Adds ``Authorization: token …``; its repr never shows the token."""

    def __init__(self, token: str | None):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"token {self._token}"
        return request

    def header_lines(self) -> list[str]:
        """The same header for a websocket handshake."""
        return [f"Authorization: token {self._token}"] if self._token else []

    def __repr__(self) -> str:
        return "TokenAuth(<token hidden>)" if self._token else "TokenAuth(None)"


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
        self.auth = TokenAuth(token)
        self.timeout = timeout
        self.http = requests.Session()
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

    def request(
        self,
        method: str,
        *path: str,
        json_body: Any = None,
        query: dict[str, str] | None = None,
        expect_json: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Call ``api/<path>``; return the decoded JSON (None for an empty answer)."""
        url = self.url.api(*path, query=query)
        where = "api/" + "/".join(p.strip("/") for p in path if p)
        response = self._send(method, url, json=json_body, timeout=timeout)
        return self._decode(response, method, where, expect_json)

    def stream(self, url: str, where: str) -> requests.Response:
        """``GET url`` (a URL of this server outside ``api/``, e.g. ``files/…``) with the body left
        to stream; error statuses raise like :meth:`request`. Close the response when done."""
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
        if status in (401, 403):
            raise AuthenticationError(
                f"{self.url} refused the request (HTTP {status}): the token is missing or wrong; "
                "set JUPYTER_TOKEN or use --token-env VAR with the server's token."
            )
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
