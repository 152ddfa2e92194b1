"""`pbx web`: the admin UI under cheroot, HTTPS with a plain-HTTP redirect beside it."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from appliance.settings import Settings

from .tls import ensure_certificate

log = logging.getLogger(__name__)
THREADS = 12  # a Pi-sized box: a few admins, the dashboard's polling, API clients


def redirect_app(https_port: int) -> Callable[..., Iterable[bytes]]:
    """A WSGI app that sends every plain-HTTP request to the same path on HTTPS."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").split(":")[0]
        # Only a host name or address; anything else (header injection) gets the plain page.
        if not host or not all(c.isalnum() or c in ".-[]" for c in host):
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"use https\n"]
        port = "" if https_port == 443 else f":{https_port}"
        path = str(environ.get("PATH_INFO") or "/")
        if not path.startswith("/") or "\r" in path or "\n" in path:
            path = "/"
        start_response("301 Moved Permanently", [
            ("Location", f"https://{host}{port}{path}"), ("Content-Type", "text/plain")])
        return [b"moved to https\n"]
    return app


def build_servers(app: Flask, settings: Settings) -> list[wsgi.Server]:
    """The HTTPS (or plain, with web_tls=off) server, and the redirect listener if asked."""
    main = wsgi.Server((settings.web_bind, settings.web_port), app, numthreads=THREADS,
                       server_name="pbx")
    servers = [main]
    if settings.web_tls != "off":
        if settings.web_tls == "files":
            assert settings.web_cert is not None and settings.web_key is not None
            cert, key = settings.web_cert, settings.web_key
        else:
            cert, key = ensure_certificate(settings.data_dir)
        main.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
        app.config["SESSION_COOKIE_SECURE"] = True
        if settings.web_http_port:
            servers.append(wsgi.Server((settings.web_bind, settings.web_http_port),
                                       redirect_app(settings.web_port), numthreads=2,
                                       server_name="pbx"))
    return servers


def serve(app: Flask, settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    servers = build_servers(app, settings)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = []
    for server in servers:
        server.prepare()
        thread = threading.Thread(target=server.serve, name="web-server", daemon=True)
        thread.start()
        threads.append(thread)
    scheme = "http" if settings.web_tls == "off" else "https"
    log.info("web UI on %s://%s:%d/", scheme, settings.web_bind, settings.web_port)
    stop.wait()
    for server in servers:
        server.stop()
