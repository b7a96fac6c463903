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
    report = ingest_into(settings, collection, docs)
    if args.json:
        out = asdict(report)
        out.pop("changed_keys")
        print(json.dumps({"collection": collection, "source": source, **out}))
    else:
        print(f"{collection}: {report.summary()}")
    return 0
