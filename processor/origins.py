"""Web origins as browsers send them, for ``PROCESSOR_ALLOWED_ORIGINS``.

A browser's ``Origin`` header is the ASCII serialisation of the page's origin (RFC 6454, WHATWG URL):
lower-case scheme and host, punycode for international names, no trailing slash, and no port when it is the
scheme's default. The allow-list is compared with that header *exactly*, so every entry is normalised to
the same form once, at start. An entry that cannot be an origin (a bare host, a path, a query) could never
match any browser and is refused, so that a typo is found at deploy time rather than by fans locked out.
``null`` is refused too: it is the origin of sandboxed frames and ``file://`` pages, which any web site can
produce, so allowing it would allow everyone.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ANY", "AllowList", "OriginError", "normalise", "parse_allow_list"]

ANY = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
NULL = "null"

#: One label of a host name as URLs carry them (browsers accept ``_`` in hosts, e.g. ``my_site.example``).
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
_ORIGIN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^/?#]*)(?P<tail>.*)", re.ASCII | re.DOTALL)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)

logger = logging.getLogger("processor.origins")


class OriginError(ValueError):
    """An allow-list entry that is not an origin; the message says why and what to write instead."""


def _not_origin(entry: str, why: str) -> OriginError:
    return OriginError(f"entry {entry!r} is not an origin ({why}); write scheme://host[:port], "
                       f"e.g. 'https://live.example.com'")


def _host(entry: str, text: str) -> str:
    """The host as browsers serialise it: lower case, punycode, IPv6 compressed in brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise _not_origin(entry, "an IPv6 address needs its closing ']'")
        try:
            address = ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise _not_origin(entry, f"{text!r} is not an IPv6 address") from None
        return f"[{address.compressed}]"
    if not text:
        raise _not_origin(entry, "it has no host")
    try:
        ascii_host = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _not_origin(entry, f"{text!r} is not a host name") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _not_origin(entry, f"{text!r} is not a host name")
    return ascii_host


def normalise(entry: str) -> str:
    """``entry`` as a browser would send it in ``Origin``; raise :class:`OriginError` if it is no origin.

    ``HTTPS://Live.Example.com:443/`` becomes ``https://live.example.com``.
    """
    text = entry.strip()
    if text.lower() == NULL:
        raise OriginError("must not contain null: it is the origin of sandboxed frames and file:// pages, "
                          "which any web site can produce")
    match = _ORIGIN.fullmatch(text)
    if match is None:
        raise _not_origin(entry, "no scheme://")
    scheme = match["scheme"].lower()
    if scheme not in DEFAULT_PORTS:
        raise _not_origin(entry, f"the scheme must be http or https, not {scheme!r}")
    if match["tail"] not in ("", "/"):
        raise _not_origin(entry, f"it has a path, query or fragment: {match['tail']!r}")
    rest = match["rest"]
    if "@" in rest:
        raise _not_origin(entry, "it has user information before the host")
    host_text, port = rest, None
    colon = rest.rfind(":")
    if colon != -1 and colon > rest.rfind("]"):  # a port, not a colon inside an IPv6 address
        host_text, port_text = rest[:colon], rest[colon + 1:]
        if port_text:  # "https://host:" means the default port, as in URLs
            if not _PORT.fullmatch(port_text) or not 0 < int(port_text) <= 65535:
                raise _not_origin(entry, f"the port must be a number from 1 to 65535, not {port_text!r}")
            port = int(port_text)
    host = _host(entry, host_text)
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_allow_list(text: str) -> tuple[str, ...]:
    """Comma-separated entries -> normalised origins (and ``*``), duplicates dropped, order kept."""
    result: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        origin = ANY if item == ANY else normalise(item)
        if origin not in result:
            result.append(origin)
    return tuple(result)


@dataclass(frozen=True)
class AllowList:
    """Which ``Origin`` headers may open the live channel (and read ``/live/session``).

    A request without ``Origin`` is not from a web page and is not checked here. ``*`` allows every page's
    origin but never ``null``: an opaque origin names no site, so nobody could be held to it.
    """

    origins: frozenset[str]
    any_origin: bool = False

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowList:
        """From normalised entries (``Config.allowed_origins``); warn once if ``*`` is among them."""
        entries = tuple(entries)
        allow_list = cls(frozenset(e for e in entries if e != ANY), ANY in entries)
        if allow_list.any_origin:
            logger.warning("PROCESSOR_ALLOWED_ORIGINS contains *: any web site can open the live channel with a "
                           "signed-in fan's cookie (cross-site WebSocket hijacking); list your sites' origins instead")
        return allow_list

    def allows(self, origin: str) -> bool:
        """Whether one ``Origin`` header value is allowed (compared exactly: browsers send it normalised)."""
        if origin == NULL:
            return False
        return self.any_origin or origin in self.origins

    def allows_all(self, origins: Iterable[str]) -> bool:
        """Whether every ``Origin`` header of a request is allowed (a request may repeat the header)."""
        return all(self.allows(origin) for origin in origins)
