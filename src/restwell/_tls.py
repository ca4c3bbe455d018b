"""TLS: the one SSL context a client uses, built once at construction.

httpx 0.28 deprecated passing CA paths and client certificates as strings; restwell accepts
them (they are what users have) and builds the ``ssl.SSLContext`` itself. With ``trust_env``
on, ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` and requests' ``REQUESTS_CA_BUNDLE`` are honoured.
"""

from __future__ import annotations

import os
import ssl
import warnings
from typing import TypeAlias

__all__ = ["CertTypes", "InsecureRequestWarning", "VerifyTypes", "build_ssl_context"]

VerifyTypes: TypeAlias = "bool | str | os.PathLike[str] | ssl.SSLContext"
"""What ``verify=`` accepts: ``True``, ``False``, a CA bundle file or folder, an SSLContext."""
CertTypes: TypeAlias = "str | os.PathLike[str] | tuple[str, str] | tuple[str, str, str]"
"""What ``cert=`` accepts: a PEM file with certificate and key, or ``(cert, key[, password])``."""


class InsecureRequestWarning(UserWarning):
    """Warned once per client made with ``verify=False``: TLS certificates are not checked.

    Example:
        >>> import warnings, restwell
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     restwell.Client(verify=False).close()
        >>> caught[0].category.__name__
        'InsecureRequestWarning'
    """


def _default_context(trust_env: bool) -> ssl.SSLContext:
    if trust_env:
        for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            path = os.environ.get(variable)
            if path:
                return _context_for_path(path, variable)
        folder = os.environ.get("SSL_CERT_DIR")
        if folder:
            return _context_for_path(folder, "SSL_CERT_DIR")
    import certifi  # noqa: PLC0415 - a dependency of httpx, needed only here

    return ssl.create_default_context(cafile=certifi.where())


def _context_for_path(path: str | os.PathLike[str], name: str) -> ssl.SSLContext:
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    if os.path.isfile(path):
        return ssl.create_default_context(cafile=path)
    raise ValueError(f"{name}={os.fspath(path)!r} is neither a CA bundle file nor a folder")


def build_ssl_context(
    verify: VerifyTypes, cert: CertTypes | None, *, trust_env: bool
) -> ssl.SSLContext:
    """Build the client's SSL context.

    Example:
        >>> build_ssl_context(True, None, trust_env=False).verify_mode.name
        'CERT_REQUIRED'
    """
    if verify is True:
        context = _default_context(trust_env)
    elif verify is False:
        warnings.warn(
            "verify=False: TLS certificates will not be checked, so any server can pose as "
            "the one you call. Pass a CA bundle with verify= instead.",
            InsecureRequestWarning,
            stacklevel=4,
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, ssl.SSLContext):
        context = verify
    elif isinstance(verify, str | os.PathLike):
        context = _context_for_path(verify, "verify")
    else:
        raise TypeError(
            "verify must be True, False, a CA bundle path or an ssl.SSLContext, "
            f"got {type(verify).__name__}"
        )
    if cert is not None:
        if isinstance(cert, str | os.PathLike):
            context.load_cert_chain(cert)
        elif isinstance(cert, tuple) and len(cert) in (2, 3):
            context.load_cert_chain(*cert)
        else:
            raise TypeError("cert must be a PEM path or a (cert, key[, password]) tuple")
    return context
