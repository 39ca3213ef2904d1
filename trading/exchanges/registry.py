"""Which adapter serves a connection: the paper exchange, or ccxt with the connection's decrypted keys."""

from __future__ import annotations

from trading.crypto import secret_decrypt


def adapter_for(connection, *, portfolio=None):
    if connection.venue == "paper":
        from trading.exchanges.paper import PaperAdapter

        return PaperAdapter(connection=connection, portfolio=portfolio)
    from trading.exchanges.ccxt_adapter import CcxtAdapter

    return CcxtAdapter(
        venue=connection.venue,
        api_key=secret_decrypt(connection.api_key_encrypted),
        secret=secret_decrypt(connection.api_secret_encrypted),
        passphrase=secret_decrypt(connection.passphrase_encrypted),
        sandbox=connection.sandbox,
    )
