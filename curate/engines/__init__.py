"""Engines run stages. Each is a thin adapter with the same small surface (see base.Engine)."""
