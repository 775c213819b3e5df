"""moto's server with request handling serialised by one lock.

moto's DynamoDB TransactWriteItems deep-copies table state for rollback while other request
threads mutate it ("dictionary changed size during iteration", HTTP 500), so under parallel
requests transactions fail and conditional writes are not atomic. Connections are still
accepted on threads (keep-alive works), but each request runs alone, as a real service's
per-item serialisation would guarantee. Usage: python moto_server_serial.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class Serialised:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Consume the body inside the lock: the response is built lazily.
            return list(self.app(environ, start_response))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(host, port, Serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
