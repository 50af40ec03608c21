r"""The small framework every derivation module shares.

A derivation is a :class:`Derivation`: a name, a title, the statement (Markdown with
LaTeX), its source (paper + FORMULAS.md item), a one-line method and the *declared* kind of
its proof:

* ``"symbolic"``: sympy closes the proof exactly (``cancel``/``simplify``/``series``/
  ``limit``/``integrate``/``solve``); a difference that sympy cannot reduce to zero makes the
  check FAIL, it is never silently replaced by a numeric test.
* ``"numeric"``: quadrature, Monte Carlo or random-point evaluation with a stated tolerance.

``verify()`` runs the check and returns a :class:`Result`. The helpers below are the
checking code shared by the modules *and* by the tests' deliberately broken variants, so a
wrong statement goes through exactly the same path as the right one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import sympy as sp

__all__ = [
    "Result",
    "Derivation",
    "Check",
    "KINDS",
    "is_zero",
    "is_identity",
    "close",
]

KINDS = ("symbolic", "numeric")


class Result(NamedTuple):
    """Outcome of one derivation.

    Attributes:
        name: registry name of the derivation.
        title: one-line title.
        kind: ``"symbolic"`` or ``"numeric"``.
        holds: whether every step of the check held.
        detail: what was checked, with measured numbers for numeric checks.
        seconds: wall time of the check.
    """

    name: str
    title: str
    kind: str
    holds: bool
    detail: str
    seconds: float


class Check(NamedTuple):
    """One step of a proof: a label, whether it held, and a short note."""

    label: str
    holds: bool
    note: str = ""


@dataclass(frozen=True)
class Derivation:
    """Description of one proposition and the code that proves it.

    Attributes:
        name: registry name (the module's stem, e.g. ``"p01_soft_min_snr"``).
        title: one-line title.
        statement: Markdown with LaTeX, the proposition as proved.
        source: paper and FORMULAS.md item.
        method: how the proof is done (one sentence).
        kind: ``"symbolic"`` or ``"numeric"`` (declared; the result carries the same kind).
        checks: callable returning a list of :class:`Check`; the proposition holds iff all do.
        expressions: optional callable returning ``{name: (sympy_expr, (symbols, ...))}``
            for cross-checking against the implementation.
    """

    name: str
    title: str
    statement: str
    source: str
    method: str
    kind: str
    checks: Callable[[], list[Check]]
    expressions: Callable[[], dict] | None = field(default=None)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    def verify(self) -> Result:
        """Run the proof; an exception inside it counts as a failure with its message."""
        t0 = time.perf_counter()
        try:
            steps = list(self.checks())
            holds = bool(steps) and all(c.holds for c in steps)
            parts = [
                f"{'ok' if c.holds else 'FAIL'}: {c.label}" + (f" ({c.note})" if c.note else "")
                for c in steps
            ]
            detail = "; ".join(parts) if parts else "no checks ran"
        except Exception as exc:  # a crashing proof is a failing proof, reported as such
            holds, detail = False, f"error: {type(exc).__name__}: {exc}"
        return Result(self.name, self.title, self.kind, holds, detail, time.perf_counter() - t0)


def is_zero(expr: sp.Expr) -> bool:
    """Exact symbolic zero test: ``cancel`` first (cheap, closes rational identities), then
    ``simplify`` on what is left. Returns False when sympy cannot show the expression is 0 —
    never falls back to numbers."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    e = sp.cancel(sp.together(expr))
    if e == 0:
        return True
    e = sp.simplify(e)
    return e == 0


def is_identity(lhs: sp.Expr, rhs: sp.Expr) -> bool:
    """``lhs == rhs`` identically, by :func:`is_zero` of the difference."""
    return is_zero(sp.sympify(lhs) - sp.sympify(rhs))


def close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    """Numeric agreement ``|a - b| <= atol + rtol |b|`` (for ``kind="numeric"`` checks)."""
    return abs(float(a) - float(b)) <= atol + rtol * abs(float(b))
