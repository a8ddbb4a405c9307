"""Visitor passes (docs/visitors.md)."""
