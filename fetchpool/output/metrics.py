"""`--metrics FILE`: the run as a Prometheus text file, for node_exporter's textfile collector.

The text format wants every sample of a metric grouped under its `# TYPE` line, but
records arrive one URL at a time. Rather than hold every sample in memory (as a
`prometheus_client` registry would), each family is spooled to its own temporary file
and the families are joined at the end into the target, written atomically, so the
collector never reads half a file. A URL listed twice is written once (its first record):
the collector refuses a file with a duplicate series; URLs seen are remembered as 8-byte
digests (`filters.Seen`), not as text. A run that fails writes no file (`discard`): the
collector keeps serving the last whole one.
"""

from __future__ import annotations

import tempfile
from typing import IO

from ..filters import Seen
from ..result import Result
from .jsonarray import atomic_path

FAMILIES = (
    ("fetchpool_probe_success", "1 if the URL's record is ok, else 0"),
    ("fetchpool_probe_http_status_code", "HTTP status of the final response, 0 when there was none"),
    ("fetchpool_probe_duration_seconds", "whole fetch of the URL, every attempt and redirect included"),
    ("fetchpool_probe_ssl_earliest_cert_expiry", "expiry of the server's certificate, as a Unix timestamp"),
)


def escape_label(value: str) -> str:
    """Label value escaping of the text format: backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsWriter:
    """Collects one sample per family per URL; `close()` writes the file atomically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._spools: dict[str, IO[str]] = {
            name: tempfile.TemporaryFile("w+", encoding="utf-8") for name, _ in FAMILIES
        }
        self._seen = Seen(limit=1 << 62)
        self._closed = False

    def write(self, result: Result, cert_expires: float | None = None) -> None:
        if not self._seen.add(result.url):
            return
        labels = f'{{url="{escape_label(result.url)}"}}'
        spool = self._spools
        spool["fetchpool_probe_success"].write(f"fetchpool_probe_success{labels} {int(result.ok)}\n")
        spool["fetchpool_probe_http_status_code"].write(
            f"fetchpool_probe_http_status_code{labels} {result.status or 0}\n"
        )
        seconds = round(result.elapsed_ms / 1000, 6)
        spool["fetchpool_probe_duration_seconds"].write(f"fetchpool_probe_duration_seconds{labels} {seconds}\n")
        if cert_expires is not None:
            spool["fetchpool_probe_ssl_earliest_cert_expiry"].write(
                f"fetchpool_probe_ssl_earliest_cert_expiry{labels} {int(cert_expires)}\n"
            )

    def discard(self) -> None:
        """Drop the spools without writing (a failed run); after `close`, nothing to do."""
        if not self._closed:
            self._closed = True
            for spool in self._spools.values():
                spool.close()

    def close(self) -> None:
        if self._closed:
            return
        try:
            with atomic_path(self.path) as out:
                for name, help_text in FAMILIES:
                    spool = self._spools[name]
                    out.write(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
                    spool.seek(0)
                    while block := spool.read(1 << 16):
                        out.write(block)
        finally:
            self.discard()
