"""API versioning: where ``api_version=`` goes on the request (a header, the path, the query).

Each strategy is a frozen value with one pure method, ``apply``, run while the request is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

__all__ = ["VersionHeader", "VersionPath", "VersionQuery", "Versioning"]


@dataclass(frozen=True, slots=True)
class VersionHeader:
    """Send the API version in a header (``X-API-Version`` by default).

    Example:
        >>> import restwell
        >>> client = restwell.Client("https://api.example.com", api_version="2024-06-01",
        ...                          versioning=restwell.VersionHeader("Stripe-Version"))
        >>> client.close()
    """

    name: str = "X-API-Version"

    def apply(self, url: httpx.URL, headers: httpx.Headers, version: str) -> httpx.URL:
        """Set the header; the URL is unchanged."""
        headers[self.name] = version
        return url


@dataclass(frozen=True, slots=True)
class VersionPath:
    """Prefix the request path with the version: ``/users`` becomes ``/v2/users``.

    The prefix goes after the base URL's own path, so ``base_url="https://h/api"`` and
    ``api_version="v2"`` call ``https://h/api/v2/users``.

    Example:
        >>> VersionPath().apply(httpx.URL("https://h/api/users"), httpx.Headers(), "v2",
        ...                     base_path="/api/")
        URL('https://h/api/v2/users')
    """

    def apply(
        self, url: httpx.URL, headers: httpx.Headers, version: str, base_path: str = "/"
    ) -> httpx.URL:
        """Insert ``version`` after ``base_path``."""
        path = url.path
        if path.startswith(base_path):
            path = f"{base_path}{version.strip('/')}/{path[len(base_path) :]}"
        try:
            return url.copy_with(path=path)
        except httpx.InvalidURL as exc:  # a "?", "#" or control character in the version
            raise ValueError(f"api_version {version!r} cannot go in a URL path: {exc}") from None


@dataclass(frozen=True, slots=True)
class VersionQuery:
    """Send the API version as a query parameter (``api-version`` by default, as Azure does).

    Example:
        >>> VersionQuery().apply(httpx.URL("https://h/x"), httpx.Headers(), "2024-06-01")
        URL('https://h/x?api-version=2024-06-01')
    """

    name: str = "api-version"

    def apply(self, url: httpx.URL, headers: httpx.Headers, version: str) -> httpx.URL:
        """Set the query parameter."""
        return url.copy_set_param(self.name, version)


Versioning = VersionHeader | VersionPath | VersionQuery
"""What ``versioning=`` accepts."""
