"""Noticing that a streaming client hung up, also on descriptors above select()'s limit of 1023."""
from __future__ import annotations

import os
import resource
import socket
from types import SimpleNamespace

import pytest

from app.gateway.relay import ClientWatch

HIGH_FD = 1500


@pytest.fixture
def high_fd_pair():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH_FD:
        pytest.skip("the hard open-file limit is below the descriptor this test needs")
    if soft <= HIGH_FD:
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH_FD + 1, hard))
    server_side, client_side = socket.socketpair()
    os.dup2(server_side.fileno(), HIGH_FD)
    server_side.close()
    yield client_side
    client_side.close()
    os.close(HIGH_FD)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def watch_for(fd: int) -> ClientWatch:
    rfile = SimpleNamespace(fileno=lambda: fd)
    return ClientWatch({"wsgi.input": SimpleNamespace(rfile=rfile)})


def test_a_connected_client_is_not_gone_and_a_closed_one_is(high_fd_pair):
    watch = watch_for(HIGH_FD)
    assert watch.gone() is False
    high_fd_pair.close()
    assert watch.gone() is True
