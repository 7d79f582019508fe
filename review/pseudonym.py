"""The review app's pseudonyms: :mod:`stream.privacy.pseudonym` (moved there so ``custodes alerts`` and
``custodes replay`` show the same pseudonyms without the stream package importing the review app)."""

from __future__ import annotations

from stream.privacy.pseudonym import KEY_FILE, PREFIX, Pseudonymiser, load_key

__all__ = ["KEY_FILE", "PREFIX", "Pseudonymiser", "load_key"]
