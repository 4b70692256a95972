"""`python -m sandbox --port 5001 --tls-port 5443 --smtp-port 1025 [--portal-url …]
[--instance-dir instance]`."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from sandbox import create_app
from sandbox.server import start_servers


def main(argv: list[str] | None = None) -> None:
    """Start the sandbox and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=5001, help="plain HTTP (browser pages)")
    parser.add_argument("--tls-port", type=int, default=5443, help="HTTPS (server-to-server)")
    parser.add_argument("--smtp-port", type=int, default=1025, help="SMTP catcher")
    parser.add_argument("--portal-url", default="http://127.0.0.1:5000")
    parser.add_argument("--instance-dir", default="instance")
    args = parser.parse_args(argv)
    instance = Path(args.instance_dir).resolve()
    app = create_app({"portal_url": args.portal_url, "instance_dir": str(instance)})
    servers = start_servers(app, args.port, args.tls_port, args.smtp_port, instance)
    print(f"Inspector and consent pages: {servers.http_url}/")
    print(f"Server-to-server (HTTPS):    {servers.https_url}/")
    print(f"SMTP catcher:                127.0.0.1:{servers.smtp_port}")
    print(f"CA bundle: PROVIDER_CA_BUNDLE={servers.certificates.ca_cert}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
