"""`churnops report`: the pull-request report, one comment updated in place.

In Markdown: what changed in params.yaml and in the metrics against a base ref (from
`dvc params diff` and `dvc metrics diff`), the gate's verdict rule by rule
(reports/gate.json) naming the champion it compared against, with both models' numbers
on the same rows, and the plots drawn in the comment (release/report_plots.py).
`--plots-dir` renders `dvc plots diff` as HTML for upload as a workflow artifact.
`--post PR` creates or updates the pull request's comment that the bot (`--bot`) wrote
and that starts with MARKER, through GitHub's REST API; a comment by anyone else is
never edited, whatever it starts with.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

from churnops import github
from churnops.config import GATE_REPORT, read_json
from churnops.plots import pipeline_plots
from churnops.release import report_plots

MARKER = "<!-- churnops-report -->"


class ReportError(RuntimeError):
    """A diff could not be computed; the message carries DVC's or Git's reason."""


def _dvc(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ReportError(f"`dvc {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def check_base(base: str) -> None:
    """The base must be a commit here (a shallow CI checkout has no main: fetch it)."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        raise ReportError(
            f"the base {base!r} is not a commit in this clone: fetch it (in a workflow, "
            "actions/checkout with fetch-depth: 0) or pass another --base"
        )


def dvc_diff(kind: str, base: str) -> dict[str, Any]:
    """`dvc params diff` or `dvc metrics diff` of the workspace against `base`, as JSON."""
    return json.loads(_dvc(kind, "diff", base, "--json") or "{}")


def at_base(base: str, path: str) -> str | None:
    """The file's text at `base`, or None when the base does not have it."""
    shown = subprocess.run(["git", "show", f"{base}:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def plots_section(base: str, where: str) -> str:
    """Every dvc.yaml plot drawn in Markdown, this pull request against `base`."""
    drawn = [
        report_plots.markdown(plot, Path(plot.file).read_text(), at_base(base, plot.file))
        for plot in pipeline_plots(Path("dvc.yaml"))
        if Path(plot.file).exists()
    ]
    return "\n\n".join(
        [*drawn, f"Interactive versions (`dvc plots diff {base}` as HTML): {where}."]
    )


def render_plots(base: str, out_dir: Path) -> Path:
    """`dvc plots diff` of the workspace against `base`, as an HTML page in `out_dir`."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _dvc("plots", "diff", base, "-o", str(out_dir))
    return out_dir / "index.html"


def _number(value: float) -> str:
    """Four decimals, or scientific notation for tiny values (parity differences)."""
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    return "-" if value is None else f"`{value}`" if isinstance(value, str) else str(value)


def _change(entry: dict[str, Any]) -> str:
    change = entry.get("diff")
    if isinstance(change, int | float) and not isinstance(change, bool):
        return f"{change:+.4f}"
    return "changed" if entry.get("old") != entry.get("new") else ""


def diff_table(diff: dict[str, Any], what: str) -> str:
    """One row per changed key: file, key, old, new, change."""
    rows = [
        f"| {path} | `{key}` | {_value(entry.get('old'))} | {_value(entry.get('new'))} | "
        f"{_change(entry)} |"
        for path, entries in sorted(diff.items())
        for key, entry in sorted(entries.items())
    ]
    if not rows:
        return f"No {what} changed."
    header = f"| File | {what.capitalize()} | Base | This PR | Change |\n|---|---|---|---|---|"
    return "\n".join([header, *rows])


def comparison_section(compared: dict[str, Any] | None) -> str:
    """Champion and candidate side by side, the difference and (on the holdout) its interval."""
    if compared is None:
        return "No champion yet: nothing to compare against."
    columns = ["Metric", "Champion", "Candidate", "Difference"]
    if compared["on"] == "newest_snapshot":
        share = f"{compared['confidence']:.0%}"
        columns.append(f"{share} interval")
        where = (
            f"Both models scored on the same {compared['rows']} customers of the newest "
            f"snapshot, which neither trained on; {share} paired bootstrap interval of the "
            f"difference ({compared['resamples']} resamples)."
        )
    else:
        where = (
            f"The candidate on the test split ({compared['rows']} customers) against the "
            "champion's numbers from its model card (its own test split: the same rows while "
            "data and split params are unchanged)."
        )
    lines = [where, "", f"| {' | '.join(columns)} |", "|---" * len(columns) + "|"]
    for name, entry in compared["metrics"].items():
        cells = [f"`{name}`", _number(entry["champion"]), _number(entry["challenger"])]
        cells.append(f"{entry['difference']:+.4f}")
        if "interval" in entry:
            cells.append("[{:+.4f}, {:+.4f}]".format(*entry["interval"]))
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def gate_section(gate: dict[str, Any] | None) -> str:
    """The verdict, both models' numbers, and every rule, failed rules first."""
    if gate is None:
        return "No gate report (reports/gate.json): the pipeline did not reach the gate."
    verdict = "passed" if gate["passed"] else "FAILED"
    rules = sorted(gate["rules"], key=lambda r: r["passed"])
    lines = [
        f"**Gate: {verdict}** (candidate `{gate['candidate'][:12]}`, "
        f"compared against the champion `{(gate.get('baseline') or 'none')[:12]}`)",
        "",
        comparison_section(gate["comparison"]),
        "",
        "| Rule | Value | Verdict |",
        "|---|---|---|",
        *(
            f"| `{r['rule']}` | {_number(r['value'])} | {'ok' if r['passed'] else '**FAILED**'} |"
            for r in rules
        ),
    ]
    return "\n".join(lines)


def render(
    base: str,
    params_diff: dict[str, Any],
    metrics_diff: dict[str, Any],
    gate: dict[str, Any] | None,
    plots: str,
) -> str:
    """The whole comment; it starts with MARKER so a later run finds and updates it."""
    return (
        "\n\n".join(
            [
                MARKER,
                f"## churnops report against `{base}`",
                "### Gate",
                gate_section(gate),
                "### Params",
                diff_table(params_diff, "params"),
                "### Metrics",
                diff_table(metrics_diff, "metrics"),
                "### Plots",
                plots,
            ]
        )
        + "\n"
    )


def post(body: str, pr: int, repository: str, token: str, api: str, bot: str) -> str:
    """Update the bot's report comment on the pull request, or create it; its URL."""
    page = 1
    while True:
        comments = github.request(
            "GET",
            f"{api}/repos/{repository}/issues/{pr}/comments?per_page=100&page={page}",
            token,
        )
        ours = next(
            (
                c
                for c in comments
                if c["user"]["login"] == bot and (c.get("body") or "").startswith(MARKER)
            ),
            None,
        )
        if ours is not None:
            url = f"{api}/repos/{repository}/issues/comments/{ours['id']}"
            return github.request("PATCH", url, token, {"body": body})["html_url"]
        if len(comments) < 100:
            break
        page += 1
    url = f"{api}/repos/{repository}/issues/{pr}/comments"
    return github.request("POST", url, token, {"body": body})["html_url"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops report", description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="Git ref to compare with (default main)")
    parser.add_argument("--out", type=Path, help="write the Markdown here (default stdout)")
    parser.add_argument("--plots-dir", type=Path, help="render `dvc plots diff` HTML here")
    parser.add_argument("--plots-url", help="link to the uploaded plots (the run's artifacts)")
    parser.add_argument(
        "--post",
        type=int,
        metavar="PR",
        help="post to this pull request (env GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL)",
    )
    parser.add_argument(
        "--bot",
        default=os.environ.get("CHURNOPS_BOT"),
        help="the login GITHUB_TOKEN posts as; only its comment is updated (env CHURNOPS_BOT)",
    )
    args = parser.parse_args(argv)
    try:
        check_base(args.base)
        params_diff = dvc_diff("params", args.base)
        metrics_diff = dvc_diff("metrics", args.base)
        if args.plots_dir:
            render_plots(args.base, args.plots_dir)
    except ReportError as exc:
        sys.exit(f"report: {exc}")
    where = f"[the plots artifact]({args.plots_url})" if args.plots_url else "the plots artifact"
    plots = plots_section(args.base, where)
    gate = read_json(GATE_REPORT) if GATE_REPORT.exists() else None
    body = render(args.base, params_diff, metrics_diff, gate, plots)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(body)
    else:
        print(body, end="")
    if args.post is not None:
        if not args.bot:
            sys.exit("report: --post needs --bot LOGIN (or CHURNOPS_BOT): the login it posts as")
        api = os.environ.get("GITHUB_API_URL", github.DEFAULT_API_URL)
        try:
            repository, token = os.environ["GITHUB_REPOSITORY"], os.environ["GITHUB_TOKEN"]
            url = post(body, args.post, repository, token, api, args.bot)
        except KeyError as missing:
            sys.exit(f"report: --post needs the environment variable {missing}")
        except (urllib.error.URLError, TimeoutError) as exc:
            sys.exit(f"report: posting to pull request {args.post} failed: {exc}")
        print(f"report: posted {url}", file=sys.stderr)


if __name__ == "__main__":
    main()
