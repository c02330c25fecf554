"""A small SOQL parser and evaluator for :class:`FakeSalesforce`.

Supported grammar (keywords are case-insensitive, as in SOQL)::

    SELECT item [, item ...] FROM SObject
        [WHERE condition]
        [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] [, ...]]
        [LIMIT n] [OFFSET n]

    item      := path | COUNT() | COUNT(path) [alias]
    condition := condition OR condition | condition AND condition | NOT condition
               | ( condition ) | path op value | path [NOT] IN ( value [, value ...] )
    op        := = | != | <> | < | <= | > | >= | LIKE
    value     := 'string' | number | TRUE | FALSE | NULL | YYYY-MM-DD | ISO date-time
               | TODAY | YESTERDAY | TOMORROW | LAST_N_DAYS:n | NEXT_N_DAYS:n

Text comparison is case-insensitive, like Salesforce's. Anything else (sub-queries,
GROUP BY, semi-joins, functions other than ``COUNT``) raises :class:`SoqlError`, which the
fake answers with HTTP 400 ``MALFORMED_QUERY`` just as Salesforce does for a query it cannot
parse.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "And",
    "Comparison",
    "DateRange",
    "Expr",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "SelectItem",
    "SoqlError",
    "Value",
    "evaluate",
    "parse",
]

#: The fixed "today" of the fake org; relative date literals are resolved against it so that
#: query results never depend on the wall clock.
ORG_TODAY = _dt.date(2024, 6, 1)


class SoqlError(ValueError):
    """The query could not be parsed (Salesforce: ``MALFORMED_QUERY``)."""


@dataclass(frozen=True)
class DateRange:
    """A relative date literal such as ``LAST_N_DAYS:30``: the half-open day range [start, end)."""

    start: str
    end: str


Value = Union[str, int, float, bool, None, DateRange]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(frozen=True)
class SelectItem:
    """One entry of the SELECT list; ``aggregate`` is ``"count"`` for ``COUNT(path)``."""

    path: str
    aggregate: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class Comparison:
    """``path op value``; for ``IN``/``NOT IN`` the value is a tuple of values."""

    path: str
    op: str
    value: Value | tuple[Value, ...]


@dataclass(frozen=True)
class And:
    """Both sides must hold."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    """Either side must hold."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    """The operand must not hold."""

    operand: Expr


Expr = Union[Comparison, And, Or, Not]  # noqa: UP007 - forward references need Union


@dataclass(frozen=True)
class OrderItem:
    """One ORDER BY key."""

    path: str
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    """A parsed SOQL statement."""

    sobject: str
    items: list[SelectItem] = field(default_factory=list)
    count_only: bool = False
    where: Expr | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    def paths(self) -> list[str]:
        """Every field path the query mentions (SELECT, WHERE and ORDER BY)."""
        out = [item.path for item in self.items if item.path]
        stack: list[Expr] = [self.where] if self.where is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, Comparison):
                out.append(node.path)
            elif isinstance(node, (And, Or)):
                stack.extend((node.left, node.right))
            else:
                stack.append(node.operand)
        out.extend(item.path for item in self.order_by)
        return out


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\d+)?)
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError(f"unexpected token: '{text[pos : pos + 20]}'")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, match.group()))
        pos = match.end()
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _day(offset: int) -> str:
    return (ORG_TODAY + _dt.timedelta(days=offset)).isoformat()


def _date_literal(word: str) -> DateRange | None:
    upper = word.upper()
    fixed = {"TODAY": 0, "YESTERDAY": -1, "TOMORROW": 1}
    if upper in fixed:
        return DateRange(_day(fixed[upper]), _day(fixed[upper] + 1))
    if ":" in upper:
        name, _, count = upper.partition(":")
        n = int(count)
        if name == "LAST_N_DAYS":
            return DateRange(_day(-n), _day(1))
        if name == "NEXT_N_DAYS":
            return DateRange(_day(1), _day(n + 1))
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> _Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise SoqlError("unexpected end of query")
        self.pos += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def expect_keyword(self, word: str) -> None:
        tok = self.next()
        if tok.kind != "word" or tok.text.upper() != word:
            raise SoqlError(f"unexpected token: '{tok.text}'")

    def expect_punct(self, char: str) -> None:
        tok = self.next()
        if tok.text != char:
            raise SoqlError(f"unexpected token: '{tok.text}'")

    def path(self) -> str:
        tok = self.next()
        if tok.kind != "word" or ":" in tok.text:
            raise SoqlError(f"unexpected token: '{tok.text}'")
        return tok.text

    def integer(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            raise SoqlError(f"unexpected token: '{tok.text}'")
        return int(tok.text)

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        items, count_only = self.select_list()
        self.expect_keyword("FROM")
        query = Query(sobject=self.path(), items=items, count_only=count_only)
        if "." in query.sobject:
            raise SoqlError(f"unexpected token: '{query.sobject}'")
        if self.at_keyword("WHERE"):
            self.next()
            query.where = self.or_expr()
        if self.at_keyword("ORDER"):
            self.next()
            self.expect_keyword("BY")
            query.order_by = self.order_list()
        if self.at_keyword("LIMIT"):
            self.next()
            query.limit = self.integer()
        if self.at_keyword("OFFSET"):
            self.next()
            query.offset = self.integer()
        tok = self.peek()
        if tok is not None:
            raise SoqlError(f"unexpected token: '{tok.text}'")
        return query

    def select_list(self) -> tuple[list[SelectItem], bool]:
        items: list[SelectItem] = []
        count_only = False
        while True:
            if self.at_keyword("COUNT") and (nxt := self.peek(1)) is not None and nxt.text == "(":
                self.next()
                self.next()
                closing = self.peek()
                if closing is not None and closing.text == ")":
                    self.next()
                    count_only = True
                else:
                    path = self.path()
                    self.expect_punct(")")
                    alias = None
                    tok = self.peek()
                    if tok is not None and tok.kind == "word" and tok.text.upper() != "FROM":
                        alias = self.next().text
                    items.append(SelectItem(path=path, aggregate="count", alias=alias))
            else:
                tok = self.peek()
                if tok is not None and tok.text == "(":
                    raise SoqlError("unexpected token: '(' (sub-queries are not supported by the fake)")
                items.append(SelectItem(path=self.path()))
            tok = self.peek()
            if tok is not None and tok.text == ",":
                self.next()
                continue
            break
        if count_only and items:
            raise SoqlError("COUNT() must be the only element in the SELECT list")
        aggregates = [item for item in items if item.aggregate]
        if aggregates and len(aggregates) != len(items):
            raise SoqlError("Field must be grouped or aggregated")
        return items, count_only

    def order_list(self) -> list[OrderItem]:
        out: list[OrderItem] = []
        while True:
            path = self.path()
            descending = False
            nulls_last: bool | None = None
            if self.at_keyword("ASC", "DESC"):
                descending = self.next().text.upper() == "DESC"
            if self.at_keyword("NULLS"):
                self.next()
                tok = self.next()
                if tok.text.upper() not in ("FIRST", "LAST"):
                    raise SoqlError(f"unexpected token: '{tok.text}'")
                nulls_last = tok.text.upper() == "LAST"
            out.append(OrderItem(path, descending, nulls_last))
            following = self.peek()
            if following is not None and following.text == ",":
                self.next()
                continue
            return out

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.at_keyword("OR"):
            self.next()
            left = Or(left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.factor()
        while self.at_keyword("AND"):
            self.next()
            left = And(left, self.factor())
        return left

    def factor(self) -> Expr:
        if self.at_keyword("NOT"):
            self.next()
            return Not(self.factor())
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.next()
            inner = self.or_expr()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.path()
        if self.at_keyword("NOT"):
            self.next()
            self.expect_keyword("IN")
            return Comparison(path, "not in", self.value_list())
        if self.at_keyword("IN"):
            self.next()
            return Comparison(path, "in", self.value_list())
        if self.at_keyword("LIKE"):
            self.next()
            value = self.value()
            if not isinstance(value, str):
                raise SoqlError("LIKE needs a string value")
            return Comparison(path, "like", value)
        tok = self.next()
        if tok.kind != "op":
            raise SoqlError(f"unexpected token: '{tok.text}'")
        op = "!=" if tok.text == "<>" else tok.text
        return Comparison(path, op, self.value())

    def value_list(self) -> tuple[Value, ...]:
        self.expect_punct("(")
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.upper() == "SELECT":
            raise SoqlError("semi-join sub-selects are not supported by the fake")
        values = [self.value()]
        while (tok := self.peek()) is not None and tok.text == ",":
            self.next()
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Value:
        tok = self.next()
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind in ("date", "datetime"):
            return tok.text
        if tok.kind == "word":
            upper = tok.text.upper()
            if upper == "TRUE":
                return True
            if upper == "FALSE":
                return False
            if upper == "NULL":
                return None
            literal = _date_literal(tok.text)
            if literal is not None:
                return literal
        raise SoqlError(f"unexpected token: '{tok.text}'")


def parse(text: str) -> Query:
    """Parse ``text`` into a :class:`Query`; raise :class:`SoqlError` when it is not supported."""
    if not text or not text.strip():
        raise SoqlError("empty query")
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def _norm(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


def _like(value: object, pattern: str) -> bool:
    if not isinstance(value, str):
        return False
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _compare(value: object, op: str, target: Value) -> bool:
    if isinstance(target, DateRange):
        if not isinstance(value, str):
            return False
        day = value[:10]
        checks: dict[str, Callable[[], bool]] = {
            "=": lambda: target.start <= day < target.end,
            "!=": lambda: not target.start <= day < target.end,
            "<": lambda: day < target.start,
            "<=": lambda: day < target.end,
            ">": lambda: day >= target.end,
            ">=": lambda: day >= target.start,
        }
        return checks[op]()
    if op == "=":
        return _norm(value) == _norm(target)
    if op == "!=":
        return _norm(value) != _norm(target)
    if value is None or target is None:
        return False
    left: object = value
    right: object = target
    if isinstance(value, str) and isinstance(target, str):
        if len(target) > 10 and len(value) > 10 and "T" in target:
            left, right = value[:19], target[:19]
        else:
            left, right = value.casefold(), target.casefold()
    elif (
        isinstance(value, bool)
        or isinstance(target, bool)
        or not (isinstance(value, (int, float)) and isinstance(target, (int, float)))
    ):
        return False
    try:
        if op == "<":
            return bool(left < right)  # type: ignore[operator]
        if op == "<=":
            return bool(left <= right)  # type: ignore[operator]
        if op == ">":
            return bool(left > right)  # type: ignore[operator]
        if op == ">=":
            return bool(left >= right)  # type: ignore[operator]
    except TypeError:
        return False
    raise SoqlError(f"unsupported operator {op}")


@functools.lru_cache(maxsize=256)
def _members(options: tuple[Value, ...]) -> frozenset[object] | None:
    """``IN`` options as a set of normalised values; None if a date literal needs ``_compare``."""
    if any(isinstance(option, DateRange) for option in options):
        return None
    return frozenset(_norm(option) for option in options)


def evaluate(expr: Expr, get: Callable[[str], object]) -> bool:
    """Evaluate ``expr`` for one row; ``get(path)`` returns that row's value for ``path``."""
    if isinstance(expr, And):
        return evaluate(expr.left, get) and evaluate(expr.right, get)
    if isinstance(expr, Or):
        return evaluate(expr.left, get) or evaluate(expr.right, get)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, get)
    value = get(expr.path)
    if expr.op in ("in", "not in"):
        options = expr.value if isinstance(expr.value, tuple) else (expr.value,)
        members = _members(options)
        if members is not None:  # the same verdicts as comparing one by one, in O(1) per row
            try:
                found = _norm(value) in members
            except TypeError:  # an unhashable value: compare one by one
                found = any(_compare(value, "=", option) for option in options)
        else:
            found = any(_compare(value, "=", option) for option in options)
        return found if expr.op == "in" else not found
    if expr.op == "like":
        assert isinstance(expr.value, str)
        return _like(value, expr.value)
    assert not isinstance(expr.value, tuple)
    return _compare(value, expr.op, expr.value)


def equality_hints(expr: Expr | None) -> dict[str, Sequence[Value]]:
    """Top-level ``path = value`` / ``path IN (...)`` constraints (ANDed), keyed by lower-case path.

    Data sources use them to avoid generating rows that cannot match; the full WHERE clause is
    still evaluated afterwards, so hints only ever narrow work, never results.
    """
    hints: dict[str, Sequence[Value]] = {}
    stack: list[Expr] = [expr] if expr is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend((node.left, node.right))
        elif isinstance(node, Comparison) and node.op in ("=", "in"):
            values = node.value if isinstance(node.value, tuple) else (node.value,)
            hints[node.path.lower()] = values
    return hints
