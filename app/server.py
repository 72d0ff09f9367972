"""The gevent WSGI server behind `pforte serve`. Monkey-patching happens in app.entry before import."""
from __future__ import annotations

import logging
import signal
import sys

from flask import Flask

log = logging.getLogger("pforte.server")


def serve(app: Flask, host: str | None = None, port: int | None = None) -> None:
    from gevent.pool import Pool
    from gevent.pywsgi import WSGIServer

    host = host or app.config["PFORTE_HOST"]
    port = int(port or app.config["PFORTE_PORT"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = WSGIServer((host, port), app, spawn=Pool(10000), log=None, error_log=log)
    grace = float(app.config.get("PFORTE_SHUTDOWN_GRACE_SECONDS", 30))

    def stop(*_args):
        log.info("shutting down; letting open requests finish for up to %.0f s", grace)
        server.stop(timeout=grace)

    import gevent

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    print(f"Pforte listening on http://{host}:{port}/", flush=True, file=sys.stderr)
    server.serve_forever()
