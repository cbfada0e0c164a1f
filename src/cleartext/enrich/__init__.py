"""Enrich: attribute each address to its AS, country and abuse contact, from data files users hold."""

from cleartext.enrich.model import Attribution

__all__ = ["Attribution"]
