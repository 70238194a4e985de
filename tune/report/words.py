"""Words the report's page and the printed summary share: the gist of a long message, a list of names, and a
recorded count said in the singular."""

from __future__ import annotations

import re
from collections.abc import Iterable

# A message's first clause ends at a semicolon, a parenthesis, a sentence's end or a line's.
CLAUSE_END = re.compile(r";|\s\(|\.\s|\n")
# A file path, with the preposition that leads to it: where a file is belongs to the full message, not its gist.
PATH = re.compile(r"(?:\s+(?:at|in|from|under|to))?\s+[~.]?/\S*")
# "1 threads": the count 1 (not 0.1, not 21) before a plural noun.
ONE_OF_MANY = re.compile(r"(?<![\d.,])(1 (?:thread|core|CPU|GPU|worker|seed|trial|epoch))s\b")


def first_clause(text: str) -> str:
    """TEXT's first clause without file paths: "ImageNet weights not found at /root/x.pth and the download failed
    (URLError: ...); put ..." gives "ImageNet weights not found and the download failed"."""
    clause = PATH.sub("", CLAUSE_END.split(text.strip(), maxsplit=1)[0]).strip(" ,:.")
    return clause or text.strip()


def brief(text: str, chars: int) -> str:
    """TEXT's first clause, cut after its last whole word within CHARS (marked "…") when longer: for a place that
    points to where the full message is said."""
    clause = first_clause(text)
    if len(clause) <= chars:
        return clause
    return clause[:chars].rsplit(" ", 1)[0] + " …"


def names_text(names: Iterable[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def singular(text: str) -> str:
    """TEXT with "1 threads", "1 cores" and the like said in the singular: a device string an older run recorded
    as "cpu (2 cores, 1 threads)" reads "cpu (2 cores, 1 thread)"."""
    return ONE_OF_MANY.sub(r"\1", text)
