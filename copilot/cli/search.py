"""``copilot search``: hybrid (dense + BM25) search of the KB, one query or a JSONL batch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from copilot.text.language import LANGUAGES

HELP = "Search the KB (hybrid dense + BM25); one QUERY, or --input/--output JSONL batches."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("query", nargs="?", help="the customer's message")
    parser.add_argument("--k", type=int, default=5, help="articles to return (default 5)")
    parser.add_argument("--collection", help="collection name (default: COPILOT_COLLECTION)")
    parser.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    parser.add_argument("--language", choices=LANGUAGES, help="query language (default: detect)")
    parser.add_argument("--type", action="append", dest="types", help="only this article type")
    parser.add_argument("--tag", action="append", dest="tags", help="only articles with a tag")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--input", type=Path, help="JSONL of {id, query, language?} lines")
    parser.add_argument("--output", type=Path, help="JSONL answers, one line per input line")


def run(args: argparse.Namespace) -> int:
    """Search and print (one query) or write a JSONL file (batch)."""
    from copilot.errors import CopilotError
    from copilot.retrieval.hybrid import HybridRetriever
    from copilot.settings import get_settings

    if args.k < 1:
        raise CopilotError("--k must be at least 1")
    if (args.query is None) == (args.input is None):
        raise CopilotError("give either a QUERY or --input FILE.jsonl (not both)")
    if args.input is None and args.output is not None:
        raise CopilotError("--output needs --input")
    settings = get_settings()
    if args.input is not None:
        from copilot.jsonl import check_readable, refuse_overwriting_inputs

        refuse_overwriting_inputs(args.output, {"--input": args.input})
        check_readable(args.input)  # fail before the index is loaded
    elif len(args.query) > settings.max_query_chars:
        raise CopilotError(
            f"the query is {len(args.query)} characters, over the limit of "
            f"{settings.max_query_chars} (COPILOT_MAX_QUERY_CHARS)"
        )
    retriever = HybridRetriever.from_settings(settings, args.collection)
    if args.input is not None:
        return _batch(retriever, args, settings.max_query_chars)
    res = retriever.search(
        args.query,
        k=args.k,
        language=args.language,
        mode=args.mode,
        types=args.types,
        tags=args.tags,
    )
    if args.json:
        print(json.dumps(res.to_dict(), ensure_ascii=False, indent=2))
        return 0
    flag = "  ABSTAIN: no good source" if res.abstain else ""
    print(f"language {res.language}, KB {res.kb_version}, {args.mode}{flag}")
    for i, hit in enumerate(res.hits, start=1):
        print(f"{i}. {hit.score:.2f}  {hit.article_id} [{hit.language}]  {hit.title}")
        print(f"   {hit.snippet}")
    if not res.hits:
        print("no results")
    return 0


def _batch(retriever: Any, args: argparse.Namespace, max_chars: int) -> int:
    """Answer every line; a bad line gets an error (stderr and its output line); exit 1 if any."""
    from copilot.errors import Problem
    from copilot.jsonl import (
        LineError,
        atomic_output,
        read_jsonl,
        refuse_overwriting_inputs,
        require_str,
        too_long,
    )

    refuse_overwriting_inputs(args.output, {"--input": args.input})
    failed = 0
    answered = 0
    lines = read_jsonl(args.input)  # an unreadable input fails here, before any output exists
    with atomic_output(args.output) as out:
        for line, obj in lines:
            qid: Any = None
            try:
                if isinstance(obj, Problem):
                    raise LineError(obj)
                qid = obj.get("id")
                if isinstance(qid, bool) or not isinstance(qid, (str, int)) or qid == "":
                    raise LineError(Problem(str(args.input), line, "field 'id': missing"))
                query = require_str(obj, "query", args.input, line)
                assert query is not None
                big = too_long("query", query, max_chars, "COPILOT_MAX_QUERY_CHARS")
                if big:
                    raise LineError(Problem(str(args.input), line, big))
                lang = require_str(obj, "language", args.input, line, optional=True)
                if lang is not None and lang not in LANGUAGES:
                    raise LineError(
                        Problem(
                            str(args.input),
                            line,
                            f"field 'language': {lang!r} is not one of {', '.join(LANGUAGES)}",
                        )
                    )
                res = retriever.search(
                    query, k=args.k, language=lang, mode=args.mode, types=args.types, tags=args.tags
                )
            except LineError as err:
                failed += 1
                print(str(err.problem), file=sys.stderr)
                _write(
                    out,
                    {
                        "id": qid,
                        "line": line,
                        "error": err.problem.message,
                        "results": [],
                        "abstain": True,
                    },
                )
                continue
            answered += 1
            _write(
                out, {"id": qid, "results": [h.to_dict() for h in res.hits], "abstain": res.abstain}
            )
    print(f"{answered} answered, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def _write(handle: TextIO, obj: dict[str, Any]) -> None:
    from copilot.jsonl import write_line

    write_line(handle, obj)
