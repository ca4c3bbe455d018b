"""TLS against the real servers: CA bundles from the environment, mutual TLS with cert=."""

from __future__ import annotations

from pathlib import Path

import pytest

import restwell

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_ca_bundle_from_the_environment(
    tls_server: str, tls_ca_file: Path, clean_env: pytest.MonkeyPatch, variable: str
) -> None:
    with restwell.Client(tls_server, retry=False) as client:
        with pytest.raises(restwell.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("/json")
    clean_env.setenv(variable, str(tls_ca_file))
    with restwell.Client(tls_server, retry=False) as client:
        assert client.get("/json").status_code == 200
    with restwell.Client(tls_server, retry=False, trust_env=False) as client:
        with pytest.raises(restwell.ConnectionError):
            client.get("/json")


@pytest.mark.anyio
async def test_ca_bundle_from_the_environment_async(
    tls_server: str, tls_ca_file: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("SSL_CERT_FILE", str(tls_ca_file))
    async with restwell.AsyncClient(tls_server, retry=False) as client:
        assert (await client.get("/json")).status_code == 200


def test_client_from_env_ca_bundle(
    tls_server: str, tls_ca_file: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("TLSAPI_BASE_URL", tls_server)
    clean_env.setenv("TLSAPI_CA_BUNDLE", str(tls_ca_file))
    with restwell.Client.from_env("TLSAPI", retry=False) as client:
        assert client.get("/json").status_code == 200


def test_mutual_tls_sync(
    mtls_server: str, tls_ca_file: Path, tls_client_cert_files: tuple[str, str]
) -> None:
    with restwell.Client(mtls_server, verify=str(tls_ca_file), retry=False) as client:
        with pytest.raises(restwell.ConnectionError) as info:
            client.get("/json")
    assert info.value.request is not None
    with restwell.Client(
        mtls_server, verify=str(tls_ca_file), cert=tls_client_cert_files, retry=False
    ) as client:
        assert client.get("/json").json()["number"] == 42


@pytest.mark.anyio
async def test_mutual_tls_async(
    mtls_server: str, tls_ca_file: Path, tls_client_cert_files: tuple[str, str]
) -> None:
    async with restwell.AsyncClient(mtls_server, verify=str(tls_ca_file), retry=False) as client:
        with pytest.raises(restwell.ConnectionError):
            await client.get("/json")
    async with restwell.AsyncClient(
        mtls_server, verify=str(tls_ca_file), cert=tls_client_cert_files, retry=False
    ) as client:
        assert (await client.get("/json")).json()["number"] == 42


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
