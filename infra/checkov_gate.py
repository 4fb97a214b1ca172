"""Run checkov on infra/ and fail unless every Bicep file was parsed, no check failed, and every skip
says why. Runs with the checkov venv's Python (`make infra-check`); standard library only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent


def main(checkov: str) -> int:
    run = subprocess.run(  # noqa: S603 - the checkov path comes from the Makefile, arguments are fixed
        [checkov, "--directory", str(INFRA), "--framework", "bicep", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        print(run.stdout[-2000:], run.stderr[-4000:], sep="\n")
        print("infra-check: checkov did not produce a report")
        return 1
    report = report[0] if isinstance(report, list) else report
    summary, results = report["summary"], report["results"]
    problems = []
    for path in results.get("parsing_errors", []):
        problems.append(f"checkov could not parse {path}")
    for check in results.get("failed_checks", []):
        where = f"{check['file_path']}:{check['file_line_range'][0]}"
        problems.append(f"FAILED {check['check_id']} {check['check_name']} ({check['resource']}, {where})")
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        if not reason.strip() or reason.strip() == "No comment provided":
            problems.append(f"skip without a reason: {check['check_id']} in {check['file_path']}")
    bicep_files = sorted(INFRA.rglob("*.bicep"))
    print(
        f"infra-check: checkov {summary['checkov_version']} on {len(bicep_files)} Bicep files: "
        f"{summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped with a reason, "
        f"{summary['parsing_errors']} parsing errors"
    )
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "checkov"))
