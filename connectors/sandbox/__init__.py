"""Local stand-ins for real venues that unmodified client libraries talk to (see docs/sandbox.md)."""
