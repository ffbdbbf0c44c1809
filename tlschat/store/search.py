"""What a history search may ask for, shared by the stores: bounds, and the words of a query."""

from __future__ import annotations

# A query longer than this (in UTF-8) is refused: it is the user's text, matched per word.
MAX_QUERY_BYTES = 200
# Results of one search at most, newest first.
MAX_RESULTS = 50
# Words of one query at most: each is a term every result must contain.
MAX_WORDS = 16


def query_words(text: str) -> list[str]:
    """The words of a query, case-folded; every one must occur in a result."""
    return [word.casefold() for word in text.split()][:MAX_WORDS]
