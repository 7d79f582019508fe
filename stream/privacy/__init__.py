"""Pseudonyms, keys and recorded disclosures."""
