"""The command line, `consent-ledger`: one module per verb group over the same use cases."""

from services.cli.main import main

__all__ = ["main"]
