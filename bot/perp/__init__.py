"""Perpetual futures in the kernel (ADR 0018): margin, maintenance, liquidation price and funding
as pure exact functions of the ledger's facts. No I/O, no clock."""
