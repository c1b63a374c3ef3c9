"""Serving the sandbox over HTTP: in a thread for tests, or as `python -m cats_sandbox`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import seed as seeds
from .app import SandboxApp
from .hal import API_PREFIX

logger = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s %s", self.command, self.path, code)

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class SandboxServer:
    """A running sandbox: `.url` is the CATS_API_URL to use; `.stop()` ends it."""

    def __init__(self, app: SandboxApp, server: BaseWSGIServer) -> None:
        self.app = app
        self.server = server
        self.thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.server.server_address[0]

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return self.root_url + API_PREFIX

    def start_in_thread(self) -> SandboxServer:
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="cats-sandbox", daemon=True
        )
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()
        self.app.deliverer.close()
        with self.app.lock:
            self.app._save_snapshot()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    rate_limit: tuple[int, int] = (500, 3600),
    snapshot_path: str | None = None,
    quiet: bool = True,
    app: SandboxApp | None = None,
) -> SandboxServer:
    """Bind a threaded sandbox server (port 0 picks a free one); call start_in_thread() or
    serve_forever() on the result."""
    app = app or SandboxApp(rate_limit=rate_limit, snapshot_path=snapshot_path)
    server = make_server(
        host,
        port,
        app,
        threaded=True,
        request_handler=_QuietHandler if quiet else WSGIRequestHandler,
    )
    return SandboxServer(app, server)


def parse_rate_limit(text: str) -> tuple[int, int]:
    """`"500/3600"` -> (500, 3600)."""
    count, _, window = text.partition("/")
    return int(count), int(window or 3600)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cats_sandbox",
        description="Run the CATS API v3 sandbox (in memory, optionally saved to a JSON snapshot).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--rate-limit",
        default="500/3600",
        help="Requests per account (site) per rolling window, as COUNT/SECONDS.",
    )
    parser.add_argument("--snapshot", default=None, help="JSON file to load and save state.")
    parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo site.")
    parser.add_argument("--verbose-requests", action="store_true")
    options = parser.parse_args(argv)
    try:
        rate_limit = parse_rate_limit(options.rate_limit)
    except ValueError:
        parser.error("--rate-limit must look like 500/3600")

    server = serve(
        options.host,
        options.port,
        rate_limit=rate_limit,
        snapshot_path=options.snapshot,
        quiet=not options.verbose_requests,
    )
    app = server.app
    if not options.no_demo:
        # A snapshot may already hold the demo site; seeding it twice would clash.
        demo = app.has_site(seeds.DEMO_SEED["subdomain"]) or app.create_site(seeds.demo_seed())
        print(f"Demo site: subdomain={demo['subdomain']} api_key={demo['api_keys'][0]}")
    print(f"CATS_API_URL={server.url}")
    print(f"Control surface: {server.root_url}/_sandbox/")
    print(f"Rate limit: {rate_limit[0]} requests / {rate_limit[1]} s per account", flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # honcho and process managers stop with SIGTERM: save the snapshot as Ctrl-C does.
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
