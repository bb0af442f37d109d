"""The Prometheus textfile output."""

from __future__ import annotations

from pathlib import Path

from fetchpool.output.metrics import MetricsWriter, escape_label
from fetchpool.result import ErrorKind, Result


def test_families_are_grouped_labels_escaped_and_duplicates_dropped(tmp_path: Path) -> None:
    out = tmp_path / "fetchpool.prom"
    writer = MetricsWriter(str(out))
    writer.write(Result(url="http://127.0.0.1/a", line=1, status=200, ok=True, elapsed_ms=12.5), cert_expires=1.9e9)
    writer.write(Result(url='http://127.0.0.1/q?x="1"\\', line=2, error=ErrorKind.TIMEOUT, elapsed_ms=1000))
    writer.write(Result(url="http://127.0.0.1/a", line=3, status=500, elapsed_ms=1))
    assert not out.exists()  # nothing until the run ends
    writer.close()
    text = out.read_text()
    lines = text.splitlines()
    types = [i for i, line in enumerate(lines) if line.startswith("# TYPE")]
    assert len(types) == 4
    assert 'fetchpool_probe_success{url="http://127.0.0.1/a"} 1' in lines
    assert 'fetchpool_probe_http_status_code{url="http://127.0.0.1/q?x=\\"1\\"\\\\"} 0' in lines
    assert 'fetchpool_probe_duration_seconds{url="http://127.0.0.1/a"} 0.0125' in lines
    assert 'fetchpool_probe_ssl_earliest_cert_expiry{url="http://127.0.0.1/a"} 1900000000' in lines
    assert sum(line.startswith('fetchpool_probe_success{url="http://127.0.0.1/a"}') for line in lines) == 1
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_escape_label() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
