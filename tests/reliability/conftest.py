"""The reliability suite's record: every case states what a user should see and what was seen.

A test takes the ``case`` fixture, says what it expects (``case.expect("error naming ...")``),
and records what it observed (``case.observe(message)``); its pass/fail is the test's own
outcome. ``make reliability`` prints the table (case, expected, observed, pass) with totals at
the end of the run; the same table is printed whenever the suite runs under ``make test``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class Case:
    nodeid: str
    expected: str = ""
    observed: list[str] = field(default_factory=list)
    outcome: str = "not run"

    def expect(self, text: str) -> None:
        self.expected = text

    def observe(self, text: object) -> None:
        """What the user saw, first line(s) only: the table stays readable."""
        line = " ".join(str(text).split())
        self.observed.append(line if len(line) <= 160 else line[:157] + "...")


_CASES: dict[str, Case] = {}


@pytest.fixture
def case(request) -> Case:
    c = _CASES.setdefault(request.node.nodeid, Case(request.node.nodeid))
    return c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    c = _CASES.get(item.nodeid)
    if c is None:
        return
    if rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed"):
        c.outcome = "pass" if rep.outcome == "passed" else rep.outcome.replace("failed", "FAIL")


def _name(nodeid: str) -> str:
    return nodeid.split("tests/reliability/", 1)[-1]


def pytest_terminal_summary(terminalreporter):
    if not _CASES:
        return
    tr = terminalreporter
    tr.section("reliability cases")
    rows = [(_name(c.nodeid), c.expected or "-", "; ".join(c.observed) or "-", c.outcome) for c in _CASES.values()]
    tr.write_line("| case | expected | observed | pass |")
    tr.write_line("| --- | --- | --- | --- |")
    for row in rows:
        tr.write_line("| " + " | ".join(s.replace("|", "\\|") for s in row) + " |")
    passed = sum(r[3] == "pass" for r in rows)
    tr.write_line(f"reliability: {passed} of {len(rows)} cases pass, {len(rows) - passed} do not")
