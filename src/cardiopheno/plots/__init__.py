"""Figures drawn from cached result tables (matplotlib, Agg backend)."""
