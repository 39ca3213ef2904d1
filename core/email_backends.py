"""Email backends that honour an idempotency key, so a message sent again (a worker killed between the
provider accepting it and the database recording it, then the same message re-sent) reaches no one twice.

A sender marks a message with `message.idempotency_key = "<kind>/<id>..."` (at most 256 characters: Resend's
limit). Backends without idempotency ignore the attribute.

- `ResendEmailBackend` (production default): anymail's Resend backend, sending the key as Resend's
  `Idempotency-Key` HTTP header; Resend answers a repeated key within 24 hours with the first send's
  result and sends nothing (https://resend.com/docs/dashboard/emails/idempotency-keys).
- `IdempotentFileBackend`: Django's file backend, writing each keyed message to a file named after its key,
  created exclusively; a repeat is dropped and logged (`email.duplicate_dropped`) and appended to
  `dropped-repeats.txt` in the directory. Same contract as Resend's, for development, staging and the newsletter
  benchmark. Unkeyed messages go to the usual `.log` file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import structlog
from anymail.backends.resend import EmailBackend as AnymailResendBackend
from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend as FileBackend

logger = structlog.get_logger(__name__)

IDEMPOTENCY_KEY_MAX = 256


def idempotency_key(message: EmailMessage) -> str | None:
    key = getattr(message, "idempotency_key", None)
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValueError(f"an idempotency key is 1 to {IDEMPOTENCY_KEY_MAX} characters, not {len(key)}")
    return str(key)


class ResendEmailBackend(AnymailResendBackend):
    def build_message_payload(self, message, defaults):
        payload = super().build_message_payload(message, defaults)
        key = idempotency_key(message)
        if key is not None:
            payload.headers["Idempotency-Key"] = key
        return payload


class IdempotentFileBackend(FileBackend):
    DROPPED_LOG = "dropped-repeats.txt"

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        unkeyed = [m for m in email_messages if idempotency_key(m) is None]
        sent = super().send_messages(unkeyed) if unkeyed else 0
        for message in email_messages:
            key = idempotency_key(message)
            if key is None or not message.recipients():
                continue
            self._write_once(key, message)
            sent += 1  # a repeat counts as accepted, as the provider answers it
        return sent

    def _write_once(self, key: str, message: EmailMessage) -> None:
        name = hashlib.sha256(key.encode()).hexdigest()[:40] + ".eml"
        path = os.path.join(self.file_path, name)
        data = message.message().as_bytes()
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "wb") as stream:
            stream.write(data)
        try:
            os.link(partial, path)  # atomic and exclusive: exactly one writer of a key wins
        except FileExistsError:
            logger.info("email.duplicate_dropped", idempotency_key=key)
            with open(os.path.join(self.file_path, self.DROPPED_LOG), "a", encoding="utf-8") as log:
                log.write(key + "\n")
        finally:
            os.unlink(partial)
