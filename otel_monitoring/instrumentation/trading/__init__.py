"""Trading instrumentors (ccxt)."""
