"""Log lines meant for people (the console renderer) carry no local variables of a traceback:
client libraries keep the URL with its password in theirs (nats-py logs its connect errors
through the standard library with the traceback)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_logged_traceback_shows_no_local_variables() -> None:
    script = textwrap.dedent("""
        import logging
        import structlog
        from orderflow.processes.logs import configure_logging

        configure_logging("test", json=False)

        def connect():
            url = "amqp://guest:s3cret@127.0.0.1:1/"
            raise ConnectionError("refused")

        try:
            connect()
        except ConnectionError:
            logging.getLogger("a.client.library").exception("library: connect failed")
            structlog.get_logger().exception("ours: connect failed")
        """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert "library: connect failed" in result.stderr
    assert "ours: connect failed" in result.stderr
    assert result.stderr.count("refused") >= 2  # both tracebacks were rendered
    assert "s3cret" not in result.stderr
