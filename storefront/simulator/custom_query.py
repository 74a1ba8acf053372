"""``customANDQuery``: the small filter language the simulator understands.

Klevu's real grammar is larger and undocumented; this is the subset the demo configs and the
storefront use, parsed strictly so that a typo in a config is an error, not an empty banner::

    query  := clause ( "AND" clause )*
    clause := ["-"] field ":" values          a leading "-" excludes the matches
    values := value | "(" value ( "OR" value )* ")"
    value  := word | '"' any text but '"' '"'

``field`` is any record field (``id``, ``itemGroupId``, ``brand``, ``color``, ``inStock`` ...)
or ``onSale`` (salePrice below price). Matching ignores case; ``true``/``false`` equal
``yes``/``no``; ``category`` matches any element of the record's path.

    id:(10001 OR 10002)      category:(Home) AND onSale:true      -brand:"Wool & Co"
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

Predicate = Callable[[dict], bool]

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<colon>:)|"(?P<quoted>[^"]*)"'
    r'|(?P<word>[^\s():"]+))'
)
VIRTUAL_FIELDS = frozenset({"onSale"})


class QueryError(ValueError):
    """The query does not parse or names a field records do not have."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"cannot read customANDQuery at {text[pos:]!r}")
        kind = match.lastgroup
        assert kind is not None  # each alternative is a named group
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _normal(value: str) -> str:
    value = value.strip().lower()
    return {"true": "yes", "false": "no"}.get(value, value)


def field_values(record: dict, field: str) -> set[str]:
    if field == "onSale":
        on_sale = float(record["salePrice"]) < float(record["price"])
        return {"yes" if on_sale else "no"}
    value = record.get(field)
    if value is None:
        return set()
    if field == "category":
        return {_normal(part) for part in str(value).split(";") if part}
    return {_normal(str(value))}


class _Parser:
    def __init__(self, text: str, known_fields: frozenset[str]):
        self.tokens = _tokens(text)
        self.pos = 0
        self.known = known_fields

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            found = "the end" if token is None else repr(token[1])
            raise QueryError(f"customANDQuery: expected {value or kind}, found {found}")
        self.pos += 1
        return token[1]

    def value(self) -> str:
        token = self.peek()
        if token and token[0] == "quoted":
            return self.take("quoted")
        return self.take("word")

    def values(self) -> set[str]:
        token = self.peek()
        if token and token[0] == "lp":
            self.take("lp")
            found = {_normal(self.value())}
            while self.peek() == ("word", "OR"):
                self.take("word", "OR")
                found.add(_normal(self.value()))
            self.take("rp")
            return found
        return {_normal(self.value())}

    def clause(self) -> Predicate:
        field = self.take("word")
        negate = field.startswith("-")
        field = field.lstrip("-")
        if field not in self.known:
            raise QueryError(f"customANDQuery: records have no field {field!r}")
        self.take("colon")
        wanted = self.values()

        def matches(record: dict) -> bool:
            return bool(field_values(record, field) & wanted) != negate

        return matches

    def query(self) -> list[Predicate]:
        clauses = [self.clause()]
        while self.peek() == ("word", "AND"):
            self.take("word", "AND")
            clauses.append(self.clause())
        token = self.peek()
        if token is not None:
            raise QueryError(f"customANDQuery: unexpected {token[1]!r}")
        return clauses


def compile_query(text: str, known_fields: Iterable[str]) -> Predicate:
    """One predicate for the whole query; an empty query matches everything."""
    if not text.strip():
        return lambda record: True
    clauses = _Parser(text, frozenset(known_fields) | VIRTUAL_FIELDS).query()
    return lambda record: all(clause(record) for clause in clauses)
