"""Log records of restwell, on the standard ``logging`` logger ``"restwell"``.

INFO: one line per call (``GET https://host/path -> 200 OK in 12.3 ms``); WARNING: each
retry with its reason and wait; ERROR: the final failure of a call. Every record carries
structured fields in ``extra`` (``method``, ``url``, ``status``, ``elapsed``, ``attempt``).
URLs are redacted before they reach a record, and nothing is formatted when the level is off.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["logger"]

logger: Final = logging.getLogger("restwell")
# A library's records go where the application's logging sends them, and nowhere when it
# configured none (the logging HOWTO's advice for libraries; stops the stderr fallback).
logger.addHandler(logging.NullHandler())
