"""A threaded HTTP service on 127.0.0.1 that signs request bodies with HMAC-SHA256.

    python examples/http_signer.py --key-file /run/secrets/signing.key [--port 8000]

POST any body; the response is the hex HMAC-SHA256 tag of the body under the
key. The key is read once into locked memory and used only through
``securememory.crypto.hmac_sha256``; the application holds no copy of it.
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from securememory import Secret, SecretFactory
from securememory.crypto import hmac_sha256


class SigningServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: Secret, port: int = 0) -> None:
        self.key = key
        super().__init__(("127.0.0.1", port), SignHandler)


class SignHandler(BaseHTTPRequestHandler):
    server: SigningServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        tag = hmac_sha256(self.server.key, body).hex().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(tag)))
        self.end_headers()
        self.wfile.write(tag)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_in_background(key: Secret, port: int = 0) -> SigningServer:
    """Start the server in a thread; ``server.server_address[1]`` is its port."""
    server = SigningServer(key, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    with SecretFactory().from_file(args.key_file) as key, SigningServer(key, args.port) as server:
        print(f"signing on http://127.0.0.1:{server.server_address[1]}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
