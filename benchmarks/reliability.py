"""The bad-input campaign: run every case of `reliability_cases` through `hc-studio` and write
the table of `docs/reliability.md` (tried, clear error, handled, crash, hang, silently wrong,
data lost per group) plus one line per case that did not end well.

    python benchmarks/reliability.py [--group NAME] [--json OUT.json] [--markdown OUT.md]

Exit code 1 when any case crashed, hung, was silently wrong or lost data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_cases import all_cases  # noqa: E402
from reliability_harness import OUTCOMES, Result, run_case  # noqa: E402

BAD_OUTCOMES = ("crash", "hang", "silently wrong", "data lost", "harness error")


def run_campaign(
    group: str | None = None, name: str | None = None, progress: bool = True
) -> list[Result]:
    cases = [
        case
        for case in all_cases()
        if (group is None or case.group == group) and (name is None or name in case.name)
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="hc-reliability-") as scratch:
        for index, case in enumerate(cases, 1):
            result = run_case(case, Path(scratch) / f"case{index:03d}")
            results.append(result)
            if progress:
                why = f"  ({result.why})" if result.why else ""
                print(
                    f"[{index}/{len(cases)}] {case.group}: {case.name}: {result.outcome}{why}",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def table(results: list[Result]) -> str:
    groups = list(dict.fromkeys(result.case.group for result in results))
    lines = [
        "| inputs | tried | " + " | ".join(OUTCOMES) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in OUTCOMES) + " |",
    ]
    total: Counter[str] = Counter()
    for group in groups + ["all"]:
        if group == "all":
            counts, tried = total, len(results)
        else:
            members = [r for r in results if r.case.group == group]
            counts, tried = Counter(r.outcome for r in members), len(members)
            total.update(counts)
        label = f"**{group}**" if group == "all" else group
        lines.append(
            f"| {label} | {tried} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |"
        )
    return "\n".join(lines)


def failures(results: list[Result]) -> str:
    bad = [r for r in results if r.outcome in BAD_OUTCOMES]
    if not bad:
        return "No case crashed, hung, was silently wrong or lost data."
    return "\n".join(f"- {r.case.group}: {r.case.name}: **{r.outcome}**: {r.why}" for r in bad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", help="run only this group of cases")
    parser.add_argument("--name", help="run only the cases whose name holds this text")
    parser.add_argument("--json", type=Path, help="write every case's outcome as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table and failures as Markdown")
    args = parser.parse_args(argv)
    start = time.monotonic()
    results = run_campaign(args.group, args.name)
    report = f"{table(results)}\n\n{failures(results)}\n"
    print(report)
    print(f"{len(results)} cases in {time.monotonic() - start:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "group": r.case.group,
                        "case": r.case.name,
                        "outcome": r.outcome,
                        "why": r.why,
                        "seconds": round(r.seconds, 2),
                    }
                    for r in results
                ],
                indent=1,
            )
        )
    if args.markdown:
        args.markdown.write_text(report)
    return 1 if any(r.outcome in BAD_OUTCOMES for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
