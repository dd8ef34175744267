"""The private redis-server helper fails loudly instead of letting a test run against nothing."""

import socket

import pytest

from tests.private_redis import free_port, running_redis, start_redis


def test_a_redis_server_that_cannot_start_is_an_error_not_a_silent_carry_on():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port()))
        squatter.listen()
        with pytest.raises(RuntimeError, match="redis-server on port"):
            start_redis(squatter.getsockname()[1])


def test_a_private_redis_answers_and_is_gone_after_the_block():
    with running_redis() as server:
        assert server.client().ping()
        process = server.process
    assert process.poll() is not None
