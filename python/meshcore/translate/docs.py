"""The supported subset as Markdown tables, generated from the schemas in
validate.py (docs/istio.md embeds them; a test keeps the two in step).

    python -m meshcore.translate.docs     # prints the tables
"""
from __future__ import annotations

from .schema import describe
from .validate import ROOTS, SPECS

# Sections that repeat the fields of spec.trafficPolicy: one row each instead.
_REPEATS = {
    "spec.trafficPolicy.portLevelSettings[].": (
        "spec.trafficPolicy.portLevelSettings[]", "translated",
        "per-port overrides of connectionPool, loadBalancer, outlierDetection, tls (fields as in trafficPolicy; "
        "each section replaces the rule's whole)"),
    "spec.subsets[].trafficPolicy.": (
        "spec.subsets[].trafficPolicy", "translated",
        "the subset's clusters: the fields of spec.trafficPolicy, portLevelSettings included; "
        "each section replaces the rule's whole"),
}
_SUMMARY: dict = {}  # kinds summed up in one row instead of their fields (none at present)
_IGNORED = "ignored (not a mesh concern)"


def rows(kind: str) -> list[tuple[str, str, str]]:
    if kind in _SUMMARY:
        return _SUMMARY[kind]
    out, done, plumbing = [], set(), []
    for path, status, detail in describe(SPECS[kind], ROOTS.get(kind, "spec")):
        repeat = next((r for prefix, r in _REPEATS.items() if path.startswith(prefix)), None)
        if repeat is not None:
            if repeat not in done:
                done.add(repeat)
                out.append(repeat)
            continue
        if path.endswith("].port.number") and "portLevelSettings" in path:
            continue
        if detail == _IGNORED:
            plumbing.append(path)
            continue
        if status == "translated" and not detail and any(path.startswith(p) for p, _, _ in out):
            continue  # a part of a field described above it
        out.append((path, status, detail))
    if plumbing:
        out.append((", ".join(plumbing), "accepted", "no effect: Kubernetes plumbing a sidecar has no use for"))
    return out


def table(kind: str) -> str:
    lines = ["| field | meshcore | how |", "|---|---|---|"]
    for path, status, detail in rows(kind):
        lines.append(f"| `{path}` | {status} | {detail.replace('|', '&#124;')} |")
    return "\n".join(lines)


def markdown_tables() -> dict[str, str]:
    return {kind: table(kind) for kind in SPECS}


if __name__ == "__main__":
    for kind, text in markdown_tables().items():
        print(f"### {kind}\n\n{text}\n")
