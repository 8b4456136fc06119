"""The `mas` command line: `app` (the commands), `backend` (this machine's runner or a
server, behind one protocol), `display` (what it shows), `remote` (the server's SDK)."""

from mas.cli.app import app

__all__ = ["app"]
