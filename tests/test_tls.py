"""TLS on both clients against real trustme-certified servers: verification, CA bundles,
the insecure-mode warning, and client certificates (mutual TLS)."""

from __future__ import annotations

import gc
import ssl
import sys
import warnings
from pathlib import Path

import pytest

import restwell


def test_unknown_ca_is_refused(tls_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with restwell.Client(tls_server, retry=False) as client:
        with pytest.raises(restwell.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("/json")


@pytest.mark.anyio
async def test_unknown_ca_is_refused_async(tls_server: str) -> None:
    async with restwell.AsyncClient(tls_server, retry=False, trust_env=False) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get("/json")


def test_ca_bundle_path_and_context(
    tls_server: str, tls_ca_file: Path, tls_context: ssl.SSLContext
) -> None:
    with restwell.Client(tls_server, verify=str(tls_ca_file)) as client:
        assert client.get("/json").status_code == 200
    with restwell.Client(tls_server, verify=tls_ca_file) as client:
        assert client.get("/json").status_code == 200
    with restwell.Client(tls_server, verify=tls_context) as client:
        assert client.get("/json").status_code == 200


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_ca_bundle_from_the_environment(
    tls_server: str, tls_ca_file: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls_ca_file))
    with restwell.Client(tls_server) as client:
        assert client.get("/json").status_code == 200
    with restwell.Client(tls_server, trust_env=False, retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            client.get("/json")


def test_verify_false_warns_once_per_client(tls_server: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with restwell.Client(tls_server, verify=False) as client:
            client.get("/json")
            client.get("/json")
    insecure = [w for w in caught if issubclass(w.category, restwell.InsecureRequestWarning)]
    assert len(insecure) == 1
    assert issubclass(restwell.InsecureRequestWarning, UserWarning)
    assert insecure[0].filename == __file__  # points at the caller's line


@pytest.mark.anyio
async def test_verify_false_async(tls_server: str) -> None:
    with pytest.warns(restwell.InsecureRequestWarning):
        client = restwell.AsyncClient(tls_server, verify=False)
    async with client:
        assert (await client.get("/json")).status_code == 200


def test_mutual_tls(
    mtls_server: str, tls_ca_file: Path, tls_client_cert_files: tuple[str, str]
) -> None:
    with restwell.Client(mtls_server, verify=str(tls_ca_file), retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            client.get("/json")
    with restwell.Client(
        mtls_server, verify=str(tls_ca_file), cert=tls_client_cert_files
    ) as client:
        assert client.get("/json").status_code == 200


@pytest.mark.anyio
async def test_mutual_tls_async(
    mtls_server: str, tls_ca_file: Path, tls_client_cert_files: tuple[str, str], on_aiohttp: bool
) -> None:
    with warnings.catch_warnings():
        if on_aiohttp and sys.version_info < (3, 11):
            # CPython 3.10's asyncio leaves the SSL transport of a refused handshake for the
            # garbage collector (its old sslproto; 3.11 rewrote it): not restwell's, not
            # aiohttp's to close. Collected here, with its ResourceWarning expected.
            warnings.simplefilter("ignore", ResourceWarning)
        async with restwell.AsyncClient(
            mtls_server, verify=str(tls_ca_file), retry=False
        ) as client:
            with pytest.raises(restwell.ConnectionError):
                await client.get("/json")
        gc.collect()
    async with restwell.AsyncClient(
        mtls_server, verify=str(tls_ca_file), cert=tls_client_cert_files
    ) as client:
        assert (await client.get("/json")).status_code == 200


def test_bad_tls_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cert"):
        restwell.Client("https://h", cert=42)  # type: ignore[arg-type]
    folder = tmp_path / "cas"
    folder.mkdir()
    restwell.Client("https://h", verify=folder).close()


def test_http2_client(tls_server: str, tls_ca_file: Path) -> None:
    pytest.importorskip("h2", reason="the http2 extra is not installed in this session")
    # The test server speaks HTTP/1.1 only; ALPN settles on it and the call still works.
    with restwell.Client(tls_server, verify=str(tls_ca_file), http2=True) as client:
        assert client.get("/json").http_version == "HTTP/1.1"


@pytest.mark.anyio
async def test_ca_bundle_from_the_environment_async(
    tls_server: str, tls_ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_ca_file))
    async with restwell.AsyncClient(tls_server, retry=False) as client:
        assert (await client.get("/json")).status_code == 200


def test_client_from_env_ca_bundle(
    tls_server: str, tls_ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TLSAPI_BASE_URL", tls_server)
    monkeypatch.setenv("TLSAPI_CA_BUNDLE", str(tls_ca_file))
    with restwell.Client.from_env("TLSAPI", retry=False) as client:
        assert client.get("/json").status_code == 200


def test_mutual_tls_with_a_combined_pem(
    mtls_server: str, tls_ca_file: Path, tls_client_cert_files: tuple[str, str], tmp_path: Path
) -> None:
    certfile, keyfile = tls_client_cert_files
    combined = tmp_path / "client-combined.pem"
    combined.write_text(Path(certfile).read_text() + Path(keyfile).read_text())
    with restwell.Client(
        mtls_server, verify=str(tls_ca_file), cert=str(combined), retry=False
    ) as client:
        assert client.get("/json").status_code == 200


def test_http2_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "h2", None)  # as if h2 were not installed
    with pytest.raises(ImportError, match=r"restwell\[http2\]"):
        restwell.Client("https://h", http2=True)


def test_certificate_failure_is_not_retried(
    tls_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with restwell.Client(tls_server, retry=restwell.Retry(backoff_factor=0)) as client:
        with pytest.raises(restwell.ConnectionError) as info:
            client.get("/json")
    assert info.value.attempts == 1  # another attempt would meet the same certificate
