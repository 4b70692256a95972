"""Accessibility checks for the browser tests: axe-core's WCAG 2.2 A/AA rules, run in the page,
plus what the issue asks and those rules leave out (<html lang>, table captions and headers).

axe-core comes from the npm registry at the version pinned in tests/e2e/package-lock.json
(`make e2e-deps`, a prerequisite of `make test-e2e`). Playwright injects the file as a script,
which the portal's Content-Security-Policy forbids: only the browser context that runs these
checks bypasses the policy (the ``axe_page`` fixture); the portal's own headers stay as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

_AXE_RUN = """async (tags) => {
  const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]};
  const result = await axe.run(document, options);
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary || ""})),
  }));
}"""

# Every data table says what it is (a caption) and what its columns are (header cells). A table
# is named by its id, or by the nearest ancestor's id.
_TABLE_PROBLEMS = """() => Array.from(document.querySelectorAll("table")).flatMap((table) => {
  const holder = table.id ? table : table.parentElement.closest("[id]");
  const name = table.id ? "#" + table.id : (holder ? "#" + holder.id + " table" : "table");
  const problems = [];
  if (!table.caption || !table.caption.textContent.trim()) {
    problems.push(name + " has no caption");
  }
  if (!table.querySelector("thead th, tr > th")) { problems.push(name + " has no header cells"); }
  return problems;
})"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The WCAG 2.2 A/AA violations axe-core finds in the page as it is now."""
    if not AXE_JS.exists():
        raise AssertionError(f"{AXE_JS} is missing: run `make e2e-deps` (npm ci in tests/e2e)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    return list(page.evaluate(_AXE_RUN, WCAG_TAGS))


def describe(violations: list[dict[str, Any]]) -> list[str]:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            summary = node["summary"].strip().splitlines()
            lines.append(f"  at {node['target']}: {summary[-1].strip() if summary else ''}")
        if len(violation["nodes"]) > 5:
            lines.append(f"  …and {len(violation['nodes']) - 5} more")
    return lines


class Audit:
    """Collects the problems of every page and dialog state a test visits, so one run reports
    them all (per state) instead of stopping at the first page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.checked: list[str] = []
        self.problems: dict[str, list[str]] = {}

    def check(self, state: str, locale: str) -> None:
        label = f"[{locale}] {state}"
        problems = describe(axe_violations(self.page))
        lang = self.page.evaluate("() => document.documentElement.lang")
        if lang != locale:
            problems.append(f'<html lang="{lang}">, expected "{locale}"')
        tables = set(self.page.evaluate(_TABLE_PROBLEMS))
        problems += sorted(tables)
        self.checked.append(label)
        if problems:
            self.problems[label] = problems

    def report(self) -> str:
        lines = [f"{len(self.problems)} of {len(self.checked)} states fail:"]
        for label, problems in self.problems.items():
            lines.append(label)
            lines += [f"  {problem}" for problem in problems]
        return "\n".join(lines)

    def assert_clean(self, at_least: int) -> None:
        """No problem in any state checked (at least ``at_least`` of them)."""
        assert self.problems == {}, self.report()
        assert len(self.checked) >= at_least, f"only {len(self.checked)} states were checked"
