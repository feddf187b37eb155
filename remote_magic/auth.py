"""How requests to one server prove who sends them: a token header, or a browser's cookies.

A token goes in ``Authorization: token …`` (and needs no XSRF check). Without one, the server's
cookies stand in for it, as in a browser: the session cookie of a password login, or the
anonymous user of a server with no token at all; every request then echoes the ``_xsrf`` cookie as
``X-XSRFToken`` (Jupyter Server checks it on writes and on file downloads). The websocket handshake carries the same token or cookies.
"""

from __future__ import annotations

import requests

XSRF_COOKIE = "_xsrf"


class ServerAuth(requests.auth.AuthBase):
    """The token, else the cookies of ``jar`` (with the XSRF header). Its repr never
    shows the token, and it holds no password."""

    def __init__(self, token: str | None, jar: requests.cookies.RequestsCookieJar):
        self._token = token
        self._jar = jar
        self.logged_in = False  # a password login gave this client its session cookie
        self.token_cookie = False  # the server traded the token for a cookie (jupyverse)

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    @property
    def xsrf(self) -> str | None:
        """The ``_xsrf`` cookie the server gave this client, if any."""
        return self._jar.get(XSRF_COOKIE)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"token {self._token}"
        elif self.xsrf:  # writes need it, and so do file downloads (GET files/…)
            request.headers["X-XSRFToken"] = self.xsrf
        return request

    def token_params(self) -> dict[str, str]:
        """``{"token": …}``, for a server that takes the token only in the URL (jupyverse)."""
        return {"token": self._token} if self._token else {}

    def header_lines(self) -> list[str]:
        """The same credentials for a websocket handshake: the token header, or the cookies where
        they stand for it (no token, or one the server traded for a cookie)."""
        lines = [f"Authorization: token {self._token}"] if self._token else []
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self._jar)
        if cookies and (self.token_cookie or not self._token):
            lines.append(f"Cookie: {cookies}")
        return lines

    def refused(self) -> str:
        """What to do when the server refuses these credentials (one clause)."""
        if self._token:
            return "the token is missing or wrong; set JUPYTER_TOKEN or use --token-env VAR with the server's token"
        if self.logged_in:
            return "the login is no longer accepted; connect again with the password"
        return (
            "it wants a token or a password: use --token-env VAR (or JUPYTER_TOKEN), "
            "or --password-env VAR / --ask-password"
        )

    def __repr__(self) -> str:
        kind = "token" if self._token else "password login" if self.logged_in else "cookies"
        return f"ServerAuth({kind}, secrets hidden)"
