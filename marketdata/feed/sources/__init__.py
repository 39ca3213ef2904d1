"""Where prices come from: `replay` (recorded candles, the default), `simulated` and `ccxt` (live)."""
