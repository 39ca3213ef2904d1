"""Daphne's HTTP requests skip Twisted's form parsing, which daphne never reads.

Twisted's `Request.requestReceived` parses every POST body with a Content-Type into `request.args`
(`parsePOSTFormSubmission`, on by default): it builds an `email.message.EmailMessage` just to read the
Content-Type, then parses url-encoded and multipart bodies. Daphne hands the raw body to the ASGI
application and never looks at `args`, so for every POST (webhooks, API orders, forms) that work was
thrown away: a quarter of a web process's CPU under a webhook load. `install()` turns it off for
daphne's request class; Django parses the body itself, as before.

config.asgi calls `install()`; it changes nothing when the process is not daphne.
"""

from __future__ import annotations

import sys


def install() -> bool:
    """True when this process is daphne (and its requests now leave POST bodies unparsed by Twisted)."""
    if "daphne.http_protocol" not in sys.modules:
        return False
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "skips_form_parsing", False):
        return True
    original_init = WebRequest.__init__

    def __init__(self, *args, **kwargs):  # noqa: N807 - wraps daphne's constructor
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # Twisted's own switch (twisted.web.http.Request)

    WebRequest.__init__ = __init__
    WebRequest.skips_form_parsing = True
    return True
