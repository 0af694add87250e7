"""``PROCESSOR_ALLOWED_ORIGINS`` entries are parsed as origins and normalised the way browsers send ``Origin``
(processor.origins), and what can never match a browser (``null``, a bare host) is refused at start: the
allow-list is compared exactly, so a loosely written entry would otherwise lock fans out."""

import logging
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.config import ConfigError, load
from processor.origins import AllowList, OriginError, normalise, parse_allow_list

from .test_config import BASE, ROOT

LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
HOST = st.one_of(
    st.lists(LABEL, min_size=1, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
)
SCHEME = st.sampled_from(["http", "https"])
PORT = st.one_of(st.none(), st.integers(1, 65535))
DEFAULT = {"http": 80, "https": 443}


def as_browser_sends(scheme: str, host: str, port: int | None) -> str:
    """The ASCII serialisation of an origin (RFC 6454 §6.2), written independently of the code under test."""
    return f"{scheme}://{host}" if port in (None, DEFAULT[scheme]) else f"{scheme}://{host}:{port}"


def random_case(draw, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=False))


@st.composite
def written_origins(draw):
    """An origin as an operator might write it, and what a browser sends for it."""
    scheme, host, port = draw(SCHEME), draw(HOST), draw(PORT)
    shown_port = port if port is not None else draw(st.sampled_from([None, DEFAULT[scheme]]))
    text = f"{random_case(draw, scheme)}://{random_case(draw, host)}"
    if shown_port is not None:
        text += f":{shown_port}"
    text += draw(st.sampled_from(["", "/"]))
    text = draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))
    return text, as_browser_sends(scheme, host, shown_port)


@given(written_origins())
def test_any_spelling_normalises_to_what_browsers_send(case):
    written, sent = case
    assert normalise(written) == sent
    assert normalise(sent) == sent  # idempotent
    assert AllowList.of(parse_allow_list(written)).allows(sent)


@given(written_origins(), st.sampled_from(["/map", "/?x=1", "#top", "/live/", "//"]))
def test_a_path_query_or_fragment_is_not_an_origin(case, tail):
    written, _ = case
    with pytest.raises(OriginError):
        normalise(written.strip().rstrip("/") + tail)


@given(HOST, PORT)
def test_a_bare_host_is_not_an_origin(host, port):
    with pytest.raises(OriginError, match="no scheme"):
        normalise(host if port is None else f"{host}:{port}")


@pytest.mark.parametrize("written, sent", [
    ("https://Live.Example.com/", "https://live.example.com"),
    ("HTTPS://LIVE.EXAMPLE.COM:443", "https://live.example.com"),
    ("http://127.0.0.1:80/", "http://127.0.0.1"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("https://live.example.com:", "https://live.example.com"),
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
    ("https://Bücher.example", "https://xn--bcher-kva.example"),
    ("https://my_site.example", "https://my_site.example"),
])
def test_examples(written, sent):
    assert normalise(written) == sent


@pytest.mark.parametrize("written, why", [
    ("null", "null"), ("NULL", "null"), ("live.example.com", "no scheme"), ("//live.example.com", "no scheme"),
    ("ftp://live.example.com", "http or https"), ("file:///tmp/map.html", "http or https"),
    ("https://", "no host"), ("https://:8080", "no host"), ("https://live.example.com:0", "port"),
    ("https://live.example.com:65536", "port"), ("https://live.example.com:http", "port"),
    ("https://user@live.example.com", "user information"), ("https://live example.com", "not a host name"),
    ("https://live..example.com", "not a host name"), ("https://[::1", "closing"), ("https://[nope]", "IPv6"),
    ("https://live.example.com/map", "path"), ("https://live.example.com?x", "path"),
])
def test_not_origins(written, why):
    with pytest.raises(OriginError, match=why):
        normalise(written)


def test_the_allow_list_keeps_order_drops_duplicates_and_keeps_the_wildcard():
    assert parse_allow_list("https://A.example/, https://a.example:443,*, ,http://b.example:8080") == (
        "https://a.example", "*", "http://b.example:8080")


def test_the_header_is_compared_exactly():
    allow = AllowList.of(["https://live.example.com"])
    assert allow.allows("https://live.example.com")
    for other in ("https://Live.Example.com", "https://live.example.com/", "https://live.example.com:443",
                  "http://live.example.com", "https://live.example.com.evil.example", "null", ""):
        assert not allow.allows(other), other
    assert allow.allows_all(["https://live.example.com"] * 2)
    assert not allow.allows_all(["https://live.example.com", "https://evil.example"])


def test_the_wildcard_allows_every_site_but_not_null_and_warns_once(caplog):
    with caplog.at_level(logging.WARNING, logger="processor.origins"):
        allow = AllowList.of(["*"])
    assert allow.allows("https://evil.example") and not allow.allows("null")
    assert [r.getMessage() for r in caplog.records if "hijacking" in r.getMessage()] != []
    assert len(caplog.records) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="processor.origins"):
        AllowList.of(["https://live.example.com"])
    assert caplog.records == []


def test_config_names_the_variable():
    with pytest.raises(ConfigError, match=r"^PROCESSOR_ALLOWED_ORIGINS entry 'live.example.com' is not an origin"):
        load({**BASE, "PROCESSOR_ALLOWED_ORIGINS": "https://ok.example, live.example.com"})
    assert load({**BASE, "PROCESSOR_ALLOWED_ORIGINS": "https://Live.Example.com/"}).allowed_origins == (
        "https://live.example.com",)


@pytest.mark.parametrize("value, line", [
    ("null", "configuration error: PROCESSOR_ALLOWED_ORIGINS must not contain null: it is the origin of "
             "sandboxed frames and file:// pages, which any web site can produce"),
    ("live.example.com", "configuration error: PROCESSOR_ALLOWED_ORIGINS entry 'live.example.com' is not an "
                         "origin (no scheme://); write scheme://host[:port], e.g. 'https://live.example.com'"),
])
def test_the_processor_exits_2_with_one_line(value, line):
    result = subprocess.run([sys.executable, "-m", "processor"], env={**BASE, "PROCESSOR_ALLOWED_ORIGINS": value},
                            cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
