"""The production Directus transport (processor.directus.HttpTransport): HTTP/1.1 GET over keep-alive
connections, against a loopback server written by hand so each answer's framing is exact."""

import asyncio

import pytest

from processor.directus import HttpTransport, TransportError, parse_response

from .conftest import run


def parsed(data, ended):
    answer = parse_response(data, ended)
    assert answer is not None
    return answer


def test_parse_an_answer_by_its_length_chunked_or_until_close():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    assert parse_response(head + b"Content-Length: 4\r\n\r\n{}", False) is None  # body not complete yet
    reply, keep_alive, used = parsed(head + b"Content-Length: 2\r\n\r\n{}NEXT", False)
    assert (reply.status, reply.body, keep_alive, used) == (200, b"{}", True, len(head) + 23)
    assert reply.header("content-type") == "application/json"
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n"
    assert parse_response(chunked[:-2], False) is None
    reply, keep_alive, used = parsed(chunked, False)
    assert reply.body == b'{"a":1}' and keep_alive and used == len(chunked)
    until_close = b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy"
    assert parse_response(until_close, False) is None
    reply, keep_alive, _ = parsed(until_close, True)
    assert (reply.status, reply.body, keep_alive) == (503, b"busy", False)
    reply, keep_alive, _ = parsed(b"HTTP/1.1 429 Too Many\r\nConnection: close\r\nRetry-After: 2\r\n"
                                          b"Content-Length: 0\r\n\r\n", False)
    assert reply.status == 429 and reply.header("retry-after") == "2" and not keep_alive
    with pytest.raises(ValueError):
        parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", False)


class Cms:
    """A loopback server answering each request with the next scripted bytes (None: close without answering)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0

    async def serve(self, reader, writer):
        self.connections += 1
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(request)
                answer = self.answers.pop(0)
                if answer is None:
                    break
                if answer == "hang":
                    await asyncio.sleep(10)  # a stand-in that never answers (pacing)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its connection: this stand-in is done with it
        finally:
            writer.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b'{"data":{"id":"u1"}}'


async def _with_cms(answers, client):
    cms = Cms(answers)
    server = await asyncio.start_server(cms.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = HttpTransport(f"http://127.0.0.1:{port}/cms")
    try:
        return cms, await client(transport)
    finally:
        await transport.close()
        server.close()


def test_requests_reuse_one_connection_and_carry_the_cookie():
    async def client(transport):
        return [await transport("/users/me", {"Cookie": f"s={i}"}, 2.0) for i in range(3)]

    cms, replies = run(_with_cms([OK, OK, OK], client))
    assert [r.status for r in replies] == [200, 200, 200] and replies[0].body == b'{"data":{"id":"u1"}}'
    assert cms.connections == 1
    assert cms.requests[2].startswith(b"GET /cms/users/me HTTP/1.1\r\nHost: 127.0.0.1:") and b"Cookie: s=2\r\n" in \
        cms.requests[2]


def test_a_connection_the_cms_closed_before_answering_is_retried_once_on_a_new_one():
    async def client(transport):
        first = await transport("/users/me", {}, 2.0)
        return first, await transport("/users/me", {}, 2.0)

    cms, (first, second) = run(_with_cms([OK, None, OK], client))
    assert first.status == second.status == 200 and cms.connections == 2


def test_refused_closed_twice_and_silent_cms_are_transport_errors():
    async def refused():
        transport = HttpTransport("http://127.0.0.1:9")  # discard port: nothing listens
        with pytest.raises(TransportError):
            await transport("/users/me", {}, 1.0)

    run(refused())

    async def client(transport):
        with pytest.raises(TransportError):
            await transport("/users/me", {}, 2.0)

    cms, _ = run(_with_cms([None, None], client))
    assert cms.connections == 2

    async def silent(transport):
        with pytest.raises(TransportError, match="TimeoutError"):
            await transport("/users/me", {}, 0.2)

    run(_with_cms(["hang"], silent))
