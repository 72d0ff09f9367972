"""A tiny forward proxy for tests, run as its own process: `python connect_proxy.py --port N --log FILE`.

It understands CONNECT (a tunnel to host:port) and absolute-URI requests (`POST http://host:port/path`,
forwarded as they are: the fake upstream accepts absolute URIs). After the first request line it only
copies bytes both ways, so kept-alive connections and TLS pass through. Each connection's first line
is appended to the log file (flushed at once), e.g. `CONNECT 127.0.0.1:4711` or
`POST http://127.0.0.1:4711/v1/chat/completions`.
"""
from __future__ import annotations

import argparse
import socket
import threading
from urllib.parse import urlsplit


def pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def handle(client: socket.socket, log_path: str) -> None:
    upstream = None
    try:
        head, rest = read_head(client)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        with open(log_path, "a") as log:
            log.write(f"{method} {target}\n")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            split = urlsplit(target)
            upstream = socket.create_connection((split.hostname, split.port or 80), timeout=10)
            upstream.sendall(head + rest)
            rest = b""
        if rest:
            upstream.sendall(rest)
        upstream.settimeout(None)
        client.settimeout(None)
        back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
        back.start()
        pipe(client, upstream)
        back.join()
    except (OSError, ValueError):
        pass
    finally:
        client.close()
        if upstream is not None:
            upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    options = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", options.port), backlog=128)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=handle, args=(client, options.log), daemon=True).start()


if __name__ == "__main__":
    main()
