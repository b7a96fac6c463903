"""Mutation spot-check: break one thing at a time in a copy of the repository, run the tests
that should notice, and report which mutants survive (issue #10).

Usage (scripts/mutation.sh passes its arguments here)::

    scripts/mutation.sh --list                 # the mutants, their file:line and tests; runs nothing
    scripts/mutation.sh                        # run them within --budget-min minutes (default 20)
    scripts/mutation.sh --only pii,citations   # mutants whose id or family contains a word
    scripts/mutation.sh --all-policy           # every pattern/lexicon/exception line of the policy

The working tree is never edited: its files (tracked and untracked, not ignored; not
``evals/frozen/``) are copied once to a temporary folder, and each mutant is written into
that copy, tested with ``pytest --no-cov -x -q`` on its own test list, and undone. A mutant
is *killed* when a test fails (the first failing test is reported), *survived* when all its
tests pass, *timeout* when its run outlived the budget, *stale* when its anchor text is no
longer in the file (update the list below). Mutants not started within the budget are
*not run*. Kills are then re-checked: each killing test is run once on the unmutated copy,
and a kill whose test fails there too is reported as *invalid*.

The report is a table (Markdown) on stdout; the exit status is 0 whatever survives (it is
a report, not a gate), 2 on bad arguments or when the copy cannot import its own package.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = "prompts/policy.yaml"
EXCLUDE = ("evals/frozen/",)  # never read (the writers' held-out sets)

# Tests per area, most specific first (pytest stops at the first failure).
POLICY_TESTS = (
    "tests/test_policy_patterns.py",
    "tests/test_guardrails_rules.py",
    "tests/test_guardrails_recall.py",
    "tests/test_guardrails.py",
)
GATE_TESTS = ("tests/test_rundiff.py",)
PII_TESTS = ("tests/test_pii.py", "tests/test_pii_masking.py")
CITATION_TESTS = ("tests/test_citations.py", "tests/test_drafting.py")
RETRIEVAL_TESTS = ("tests/test_retrieval.py",)
# tests/test_masking_remote.py would catch more, but it ingests the KB first (minutes here)
MASKING_TESTS = ("tests/test_pii_masking.py", "tests/test_drafting.py")
PIPELINE_TESTS = ("tests/test_drafting.py", "tests/test_offline_drafter.py")


@dataclass(frozen=True)
class Mutant:
    """Replace the one occurrence of ``old`` in ``path`` by ``new`` (``new`` None: delete the
    lines ``old`` spans, used for policy lines)."""

    id: str
    family: str
    path: str
    old: str
    new: str | None
    tests: tuple[str, ...]
    note: str = ""


@dataclass
class Outcome:
    mutant: Mutant
    line: int | None
    status: str  # killed | survived | timeout | stale | not run | invalid
    killer: str = ""
    seconds: float = 0.0
    detail: str = ""


def _code(
    mid: str, family: str, path: str, old: str, new: str, tests: Sequence[str], note: str = ""
) -> Mutant:
    return Mutant(mid, family, path, old, new, tuple(tests), note)


DIFF = "copilot/evaluation/diff.py"
PII = "copilot/text/pii.py"
CIT = "copilot/draft/citations.py"
HYB = "copilot/retrieval/hybrid.py"
MASK = "copilot/draft/masking.py"
PIPE = "copilot/draft/pipeline.py"

CODE_MUTANTS: tuple[Mutant, ...] = (
    # -- eval gates and regressions: comparison flips
    _code(
        "gate-ge-gt", "gates", DIFF, "value >= gate.threshold", "value > gate.threshold", GATE_TESTS
    ),
    _code(
        "gate-none-ok",
        "gates",
        DIFF,
        "ok = value is not None and",
        "ok = value is None or",
        GATE_TESTS,
    ),
    _code(
        "gate-shortfall",
        "gates",
        DIFF,
        "max(0.0, gate.threshold - value)",
        "max(0.0, value - gate.threshold)",
        GATE_TESTS,
    ),
    _code(
        "regression-lt-le", "gates", DIFF, "delta < -threshold", "delta <= -threshold", GATE_TESTS
    ),
    _code(
        "improvement-gt-ge", "gates", DIFF, "delta > threshold", "delta >= threshold", GATE_TESTS
    ),
    _code(
        "gate-language-check",
        "gates",
        DIFF,
        "if language and language not in LANGUAGES",
        "if language and language in LANGUAGES",
        GATE_TESTS,
    ),
    # -- personal data: card lengths (the rest of pii.py comes last)
    _code(
        "card-min-13-16",
        "pii",
        PII,
        "13 <= len(digits) <= 19",
        "16 <= len(digits) <= 19",
        PII_TESTS,
    ),
    _code(
        "card-max-19-16",
        "pii",
        PII,
        "13 <= len(digits) <= 19",
        "13 <= len(digits) <= 16",
        PII_TESTS,
    ),
    _code(
        "card-regex-12-15", "pii", PII, r"(?:[ \-]?\d){12,18}", r"(?:[ \-]?\d){15,18}", PII_TESTS
    ),
    # -- citation repair: negated conditions
    _code(
        "cite-allowed-not",
        "citations",
        CIT,
        "if aid in allowed_set:",
        "if aid not in allowed_set:",
        CITATION_TESTS,
    ),
    _code(
        "cite-cited-once-not",
        "citations",
        CIT,
        "if aid not in cited:",
        "if aid in cited:",
        CITATION_TESTS,
    ),
    _code(
        "cite-removed-once-not",
        "citations",
        CIT,
        "elif aid not in removed:",
        "elif aid in removed:",
        CITATION_TESTS,
    ),
    _code(
        "cite-tidy-not",
        "citations",
        CIT,
        "    if removed:\n",
        "    if not removed:\n",
        CITATION_TESTS,
    ),
    _code(
        "cite-allowed-case",
        "citations",
        CIT,
        "allowed_set = {a.lower() for a in allowed}",
        "allowed_set = set(allowed)",
        CITATION_TESTS,
    ),
    # -- retrieval abstention: negated and flipped conditions
    _code(
        "abstain-not",
        "abstention",
        HYB,
        "abstain = not out or out[0].score < cal.threshold",
        "abstain = not (not out or out[0].score < cal.threshold)",
        RETRIEVAL_TESTS,
    ),
    _code(
        "abstain-lt-le",
        "abstention",
        HYB,
        "abstain = not out or out[0].score < cal.threshold",
        "abstain = not out or out[0].score <= cal.threshold",
        RETRIEVAL_TESTS,
    ),
    _code(
        "abstain-empty-false",
        "abstention",
        HYB,
        "return SearchResult(query, [], True, lang,",
        "return SearchResult(query, [], False, lang,",
        RETRIEVAL_TESTS,
    ),
    _code(
        "good-ge-gt",
        "abstention",
        HYB,
        "h.score >= cal.threshold]",
        "h.score > cal.threshold]",
        RETRIEVAL_TESTS,
    ),
    _code(
        "draft-abstain-hits-not",
        "abstention",
        PIPE,
        "hits=() if found.abstain else found.hits",
        "hits=found.hits if found.abstain else ()",
        PIPELINE_TESTS,
    ),
    _code(
        "draft-llm-abstain-hits-not",
        "abstention",
        PIPE,
        "hits = [] if found.abstain else list(found.hits)",
        "hits = list(found.hits) if found.abstain else []",
        PIPELINE_TESTS,
    ),
    # -- masking: return values flipped
    _code(
        "mask-restore-identity",
        "masking",
        MASK,
        "return self.vault.restore(text)",
        "return text",
        MASKING_TESTS,
    ),
    _code(
        "mask-remask-identity",
        "masking",
        MASK,
        "return self.vault.remask(text)",
        "return text",
        MASKING_TESTS,
    ),
    _code(
        "mask-mapping-empty",
        "masking",
        MASK,
        "return self.vault.mapping",
        "return {}",
        MASKING_TESTS,
    ),
    _code(
        "mask-name-placeholder-none",
        "masking",
        MASK,
        "return NAME_PLACEHOLDER if self.name else None",
        "return None",
        MASKING_TESTS,
    ),
    _code(
        "mask-restore-name-not",
        "masking",
        MASK,
        "        if self.name:\n            text = text.replace",
        "        if not self.name:\n            text = text.replace",
        MASKING_TESTS,
    ),
    _code(
        "mask-message-raw",
        "masking",
        MASK,
        "message=vault.mask(message),",
        "message=message,",
        MASKING_TESTS,
    ),
    _code(
        "mask-note-raw",
        "masking",
        MASK,
        "agent_note=vault.mask(note),",
        "agent_note=note,",
        MASKING_TESTS,
    ),
    _code(
        "mask-history-raw",
        "masking",
        MASK,
        "HistoryTurn(t.role, vault.mask(t.text))",
        "HistoryTurn(t.role, t.text)",
        MASKING_TESTS,
    ),
    _code(
        "mask-shown-name", "masking", MASK, "shown_name or self.name", "self.name", MASKING_TESTS
    ),
    # -- personal data: other constants and checks
    _code(
        "luhn-d-gt4-ge4",
        "pii",
        PII,
        "d * 2 - 9 if d > 4 else",
        "d * 2 - 9 if d >= 4 else",
        PII_TESTS,
    ),
    _code(
        "luhn-mod-0-1", "pii", PII, "return total % 10 == 0", "return total % 10 == 1", PII_TESTS
    ),
    _code("iban-min-15-16", "pii", PII, "15 <= len(s) <= 34", "16 <= len(s) <= 34", PII_TESTS),
    _code("iban-mod-97", "pii", PII, "% 97 == 1", "% 97 == 0", PII_TESTS),
    _code(
        "cn-id-check-eq-ne",
        "pii",
        PII,
        '"10X98765432"[total % 11] == value[17].upper()',
        '"10X98765432"[total % 11] != value[17].upper()',
        PII_TESTS,
    ),
    _code(
        "cn-id-upper",
        "pii",
        PII,
        '"10X98765432"[total % 11] == value[17].upper()',
        '"10X98765432"[total % 11] == value[17]',
        PII_TESTS,
    ),
    _code(
        "cn-id-context-30-10",
        "pii",
        PII,
        "_CN_ID_BEFORE, _CN_ID_AFTER = 30, 15",
        "_CN_ID_BEFORE, _CN_ID_AFTER = 10, 15",
        PII_TESTS,
    ),
    _code(
        "cn-id-context-15-5",
        "pii",
        PII,
        "_CN_ID_BEFORE, _CN_ID_AFTER = 30, 15",
        "_CN_ID_BEFORE, _CN_ID_AFTER = 30, 5",
        PII_TESTS,
    ),
    _code(
        "my-number-rest-le-lt",
        "pii",
        PII,
        "(0 if rest <= 1 else 11 - rest)",
        "(0 if rest < 1 else 11 - rest)",
        PII_TESTS,
    ),
    _code(
        "my-number-context-30-10",
        "pii",
        PII,
        "context = text[max(0, start - 30) : start]",
        "context = text[max(0, start - 10) : start]",
        PII_TESTS,
    ),
    _code(
        "phone-min-9-10", "pii", PII, "9 <= len(digits) <= 15", "10 <= len(digits) <= 15", PII_TESTS
    ),
    _code(
        "phone-cued-min-7-8",
        "pii",
        PII,
        "7 <= len(digits) <= 15",
        "8 <= len(digits) <= 15",
        PII_TESTS,
    ),
    _code("ip-le-lt-255", "pii", PII, "int(part) <= 255", "int(part) < 255", PII_TESTS),
    _code(
        "ssn-area-666", "pii", PII, 'area not in ("000", "666")', 'area not in ("000",)', PII_TESTS
    ),
    _code("mask-passes-4-1", "pii", PII, "for _ in range(4):", "for _ in range(1):", PII_TESTS),
)


# ---- policy lines ------------------------------------------------------------------------
def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def policy_mutants(text: str, only_ja_profit: bool = True) -> list[Mutant]:
    """One mutant per item of a rule's detection list (patterns, lexicon, exceptions): delete
    it. Default: the Japanese profit_promise patterns; else every item of every rule."""
    lines = text.splitlines(keepends=True)
    out: list[Mutant] = []
    rule = section = lang = ""
    section_indent = lang_indent = -1
    counters: dict[tuple[str, str, str], int] = {}
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        ind = _indent(raw)
        m = re.match(r"-\s+id:\s*(\S+)", stripped)
        if m and ind <= 4:
            rule, section, lang = m.group(1), "", ""
        elif rule and re.fullmatch(r"(patterns|lexicon|exceptions):", stripped):
            section, section_indent, lang = stripped[:-1], ind, ""
        elif section and ind <= section_indent and stripped and not stripped.startswith("#"):
            section = lang = ""
        elif section and re.fullmatch(r"(en|ja|zh|any):", stripped) and ind > section_indent:
            lang, lang_indent = stripped[:-1], ind
        elif lang and stripped.startswith("- ") and ind > lang_indent:
            end = i + 1  # an item ends where the next line is at its indent or less
            while end < len(lines) and lines[end].strip() and _indent(lines[end]) > ind:
                end += 1
            key = (rule, lang, section)
            n = counters.get(key, 0)
            counters[key] = n + 1
            wanted = not only_ja_profit or (
                rule == "profit_promise" and lang == "ja" and section == "patterns"
            )
            if wanted:
                out.append(
                    Mutant(
                        f"policy-{rule}-{lang}-{section}[{n}]",
                        "policy",
                        POLICY,
                        "".join(lines[i:end]),
                        None,
                        POLICY_TESTS,
                        stripped[2:62],
                    )
                )
            i = end
            continue
        elif lang and stripped and not stripped.startswith("#") and ind <= lang_indent:
            lang = ""
            continue  # re-read this line as a language or section header
        i += 1
    return out


# ---- the copy ------------------------------------------------------------------------------
def project_files(repo: Path) -> list[str]:
    """Tracked and untracked (not ignored) files of the working tree, as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        check=True,
        capture_output=True,
    ).stdout.decode("utf-8")
    return [
        f for f in listed.split("\0") if f and not f.startswith(EXCLUDE) and (repo / f).is_file()
    ]


def make_copy(repo: Path, dest: Path) -> None:
    for rel in project_files(repo):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)


def locate(text: str, old: str) -> tuple[int | None, str]:
    """1-based line of the single occurrence of ``old``; (None, why) when it is not unique."""
    count = text.count(old)
    if count != 1:
        return None, f"anchor found {count} times"
    return text[: text.index(old)].count("\n") + 1, ""


def apply(text: str, mutant: Mutant) -> str:
    return text.replace(mutant.old, mutant.new if mutant.new is not None else "", 1)


# ---- running -------------------------------------------------------------------------------
# "FAILED tests/x.py::test[an id with spaces] - AssertionError: ..." (ids may hold spaces)
FAILED_RE = re.compile(r"^(FAILED|ERROR) (.+?)(?: - .*)?$", re.MULTILINE)


def pytest_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a same-size mutant must never reuse a stale .pyc
    env.pop("COV_CORE_SOURCE", None)
    return env


def run_pytest(
    python: str, copy: Path, args: Sequence[str], timeout: float, first: bool = True
) -> tuple[int | None, str, float]:
    """(exit code or None on timeout, output, seconds); ``first``: stop at the first failure."""
    start = time.monotonic()
    cmd = [python, "-m", "pytest", "--no-cov", *(["-x"] if first else []), "-q"]
    cmd += ["-p", "no:cacheprovider", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=copy,
        env=pytest_env(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=max(1.0, timeout))
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the run and anything it started
        out, _ = proc.communicate()
        code = None
    return code, out.decode("utf-8", "replace"), time.monotonic() - start


def first_failure(output: str) -> str:
    m = FAILED_RE.search(output)
    if m:
        return m.group(2) if m.group(1) == "FAILED" else f"{m.group(2)} (error)"
    tail = [ln for ln in output.strip().splitlines() if ln.strip()]
    return tail[-1][:120] if tail else "pytest failed"


def check_import(python: str, copy: Path) -> None:
    probe = subprocess.run(
        [python, "-c", "import copilot; print(copilot.__file__)"],
        cwd=copy,
        env=pytest_env(copy),
        capture_output=True,
        text=True,
    )
    where = Path(probe.stdout.strip() or "?").resolve()
    if probe.returncode or not where.is_relative_to(copy.resolve()):
        sys.exit(f"error: the copy imports copilot from {where}, not {copy}: {probe.stderr}")


def run_all(
    mutants: Sequence[Mutant], repo: Path, python: str, budget_s: float, keep: bool
) -> list[Outcome]:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="copilot-mutation-"))
    copy = tmp / "repo"
    outcomes: list[Outcome] = []
    try:
        make_copy(repo, copy)
        check_import(python, copy)
        print(f"copy of {repo} in {copy}; budget {budget_s / 60:.0f} min", file=sys.stderr)
        for n, mutant in enumerate(mutants, 1):
            target = copy / mutant.path
            original = target.read_text(encoding="utf-8")
            line, why = locate(original, mutant.old)
            if line is None:
                outcomes.append(Outcome(mutant, None, "stale", detail=why))
                continue
            left = budget_s - (time.monotonic() - started)
            if left <= 0:
                outcomes.append(Outcome(mutant, line, "not run", detail="budget spent"))
                continue
            target.write_text(apply(original, mutant), encoding="utf-8")
            # Hypothesis replays failures it saved in the copy: each mutant starts afresh
            shutil.rmtree(copy / ".hypothesis", ignore_errors=True)
            try:
                code, output, secs = run_pytest(python, copy, mutant.tests, left)
            finally:
                target.write_text(original, encoding="utf-8")
            if code is None:
                outcome = Outcome(mutant, line, "timeout", seconds=secs, detail="budget spent")
            elif code == 0:
                outcome = Outcome(mutant, line, "survived", seconds=secs)
            elif code == 1:
                outcome = Outcome(mutant, line, "killed", first_failure(output), secs)
            else:  # 2 interrupted/collection error, 3 internal, 4 usage, 5 no tests
                outcome = Outcome(
                    mutant, line, "killed", f"pytest exit {code}: {first_failure(output)}", secs
                )
            outcomes.append(outcome)
            print(
                f"[{n}/{len(mutants)}] {mutant.id}: {outcome.status} "
                f"{outcome.killer} ({secs:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
        verify_kills(outcomes, python, copy)
    finally:
        if keep:
            print(f"copy kept in {copy}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return outcomes


def _passable(node: str) -> bool:
    """A node id pytest can be given back (pytest prints non-ASCII ids escaped)."""
    return "::" in node and not node.endswith("(error)") and "\\u" not in node


def verify_kills(outcomes: list[Outcome], python: str, copy: Path) -> None:
    """Run every killing test once on the unmutated copy; a kill whose test fails there
    too proves nothing and is marked invalid."""
    killed = [o for o in outcomes if o.status == "killed"]
    for o in killed:
        if not _passable(o.killer):
            o.detail = "not re-checked (the test id cannot be passed back to pytest)"
    killers = sorted({o.killer for o in killed if _passable(o.killer)})
    if not killers:
        return
    shutil.rmtree(copy / ".hypothesis", ignore_errors=True)
    code, output, secs = run_pytest(python, copy, killers, 900, first=False)
    print(
        f"re-checked {len(killers)} killing tests on the unmutated copy: exit {code} ({secs:.0f}s)",
        file=sys.stderr,
    )
    bad = {node for kind, node in FAILED_RE.findall(output) if kind == "FAILED"}
    for o in killed:
        if not _passable(o.killer):
            continue
        if code == 0:
            o.detail = "re-checked"
        elif code == 1 and o.killer in bad:
            o.status, o.detail = "invalid", "the test fails without the mutation too"
        elif code == 1:
            o.detail = "re-checked"
        else:
            o.detail = f"not re-checked (pytest exit {code})"


# ---- report --------------------------------------------------------------------------------
def table(outcomes: Iterable[Outcome]) -> str:
    rows = [
        "| mutant | file:line | change | result | killed by |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        m = o.mutant
        where = f"{m.path}:{o.line}" if o.line else m.path
        change = (
            f"delete `{m.note}`"
            if m.new is None
            else f"`{_one_line(m.old)}` -> `{_one_line(m.new)}`"
        )
        change = change.replace("|", "\\|")
        killer = o.killer or o.detail
        rows.append(f"| {m.id} | {where} | {change} | {o.status} | {killer.replace('|', '/')} |")
    return "\n".join(rows)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:70]


def summary(outcomes: Sequence[Outcome]) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    survivors = [o.mutant.id for o in outcomes if o.status == "survived"]
    checked = sum(o.detail == "re-checked" for o in outcomes)
    if checked:
        parts += f" ({checked} kills re-checked: their test passes without the mutation)"
    return f"{len(outcomes)} mutants: {parts}" + (
        f"\nsurvived: {', '.join(survivors)}" if survivors else ""
    )


def select(mutants: Sequence[Mutant], only: str | None) -> list[Mutant]:
    if not only:
        return list(mutants)
    words = [w.strip() for w in only.split(",") if w.strip()]
    return [m for m in mutants if any(w in m.id or w == m.family for w in words)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/mutation.sh", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    ap.add_argument(
        "--budget-min",
        type=float,
        default=20.0,
        help="stop starting mutants after this (default 20)",
    )
    ap.add_argument(
        "--list", action="store_true", help="show the mutants and their tests; run nothing"
    )
    ap.add_argument(
        "--all-policy", action="store_true", help="every policy line, not only ja profit_promise"
    )
    ap.add_argument(
        "--only",
        help="comma-separated words: keep mutants whose id contains one or whose family is one",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter with pytest (default: this one)"
    )
    args = ap.parse_args(argv)
    if args.budget_min <= 0:
        ap.error("--budget-min must be > 0")
    policy_text = (ROOT / POLICY).read_text(encoding="utf-8")
    mutants = select(
        [*policy_mutants(policy_text, only_ja_profit=not args.all_policy), *CODE_MUTANTS], args.only
    )
    if not mutants:
        ap.error(f"no mutant matches --only {args.only!r}")
    if args.list:
        for m in mutants:
            text = (ROOT / m.path).read_text(encoding="utf-8")
            line, why = locate(text, m.old)
            where = f"{m.path}:{line}" if line else f"{m.path} (stale: {why})"
            change = (
                f"delete {m.note}" if m.new is None else f"{_one_line(m.old)} -> {_one_line(m.new)}"
            )
            print(f"{m.id}\t{where}\t{change}\t{' '.join(m.tests)}")
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0
    outcomes = run_all(mutants, ROOT, args.python, args.budget_min * 60, args.keep)
    print(table(outcomes))
    print()
    print(summary(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
