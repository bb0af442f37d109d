"""The HTTPAdapter each worker thread sends through, and the TLS contexts it shares.

Split from `client` because it is about connections and certificates, not about what a
fetch means: pools looked up once per origin, responses built without a cookie jar, and
one TLS context per verify setting per process, its certificates loaded once.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

from .connection import pool_classes

POOL_CACHE = 32  # origins remembered per worker; below the PoolManager's 64, so rarely evicted


def origin(url: str) -> str:
    """`http://host:port/path?q` -> `http://host:port`, cheaply (no full URL parse)."""
    end = url.find("/", url.find("//") + 2)
    return url if end < 0 else url[:end]


class Adapter(HTTPAdapter):
    """An HTTPAdapter whose connections report their sockets to the deadline watchdog.

    It also trims the per-request work `HTTPAdapter.send` does that fetchpool never uses:
    pools are looked up once per origin, and responses are built without a cookie jar or
    charset sniffing. Each worker owns its adapter, so the small cache needs no lock.
    """

    def __init__(self, resolve: tuple[tuple[str, int, str], ...] = (), **kwargs: Any) -> None:
        self.pool_classes = pool_classes(resolve)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self.pool_classes
        self._pools: dict[tuple[Any, ...], Any] = {}

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hand https pools one TLS context per verify setting, its certificates loaded once.

        Left to themselves, requests names the CA bundle on the pool and urllib3 builds a
        context and loads the bundle for every new connection: some 50 ms of CPU each,
        which at 30 handshakes at once starves the rest of the run past its deadlines.
        """
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if host.get("scheme") == "https":
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = tls_context(verify)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """The certificates are in the pool's context (see above): name no file on the pool."""
        super().cert_verify(conn, url, verify, cert)
        if getattr(conn, "ssl_context", None) is not None:
            conn.ca_certs = conn.ca_cert_dir = None

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = self.pool_classes
        return manager

    def get_connection_with_tls_context(
        self, request: PreparedRequest, verify: Any, proxies: dict[str, str] | None = None, cert: Any = None
    ) -> Any:
        key = (origin(request.url or ""), verify, cert, tuple((proxies or {}).items()))
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:  # new origin, or evicted and closed by the PoolManager
            if len(self._pools) >= POOL_CACHE:
                self._pools.clear()
            pool = self._pools[key] = super().get_connection_with_tls_context(request, verify, proxies, cert)
        return pool

    def request_url(self, request: PreparedRequest, proxies: dict[str, str] | None) -> str:
        """The path to send: the same as requests' without a proxy, minus two URL parses."""
        if proxies:
            return super().request_url(request, proxies)
        url = request.url or ""
        path = url[len(origin(url)) :].partition("#")[0]
        return path if path.startswith("/") else "/" + path

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        response = Response()
        response.status_code = resp.status
        response.headers = resp.headers  # urllib3's HTTPHeaderDict is already case-insensitive
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url  # type: ignore[assignment]
        response.request = req
        response.connection = self
        return response


_CONTEXTS: dict[Any, ssl.SSLContext] = {}  # one per verify setting (a run has one or two)
_CONTEXTS_LOCK = threading.Lock()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS client context for `verify` (True: requests' CA bundle; a path; False: -k),
    made once per process and shared by every worker thread, as OpenSSL allows."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(verify)
        if context is None:
            context = _CONTEXTS[verify] = _new_context(verify)
        return context


def _new_context(verify: bool | str) -> ssl.SSLContext:
    from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
    from urllib3.util.ssl_ import create_urllib3_context

    if verify is False:
        return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    location = extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH) if verify is True else verify
    if os.path.isdir(location):
        context.load_verify_locations(capath=location)
    else:
        context.load_verify_locations(cafile=location)
    return context
