"""Drafts, ratings, sent replies, agent settings and ticket state in SQLite or PostgreSQL.

One class, :class:`SqlStore`, behind the :class:`~copilot.store.base.Store` protocol, on
SQLAlchemy 2 Core (no dialect SQL of its own)::

    store = SqlStore.from_url(settings.database)      # nothing opened yet
    draft_id = store.save_draft(result.to_dict(), request_dict, origin="cli")
    store.save_rating(draft_id, "down", agent="mika", reason="too long")
    store.save_sent(draft_id, final_text, verdict="pass", agent="mika")
    store.recent(20); store.stats(); store.get_draft(draft_id)

The URL is ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
``sqlite:///:memory:`` or ``postgresql://user@host:port/db`` (psycopg 3). The schema is
brought to the newest Alembic revision on first use (:mod:`copilot.store.migrate`), safely
when several processes start at once. A store may be shared between threads (Streamlit
sessions): SQLite calls take turns on a lock, PostgreSQL calls use a connection pool that
replaces a connection the server dropped.

Failures are a :class:`CopilotError` naming the database (the file, for SQLite; the URL
without its password, for PostgreSQL), never a traceback: a folder that is missing and
cannot be created (a missing one is created), a file or folder that is not writable, a
database locked by another writer for longer than ``busy_timeout_s``, a damaged file. The
file is never deleted or rewritten, and a store retries on its next call.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Integer, create_engine, event, func, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from copilot.errors import CopilotError
from copilot.secrets import redact_url
from copilot.store import migrate
from copilot.store import schema as t
from copilot.store.base import RATINGS
from copilot.text.distance import edit_distance
from copilot.text.language import LANGUAGES

Clock = Callable[[], dt.datetime]
ORIGINS = ("ui", "cli", "library")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_text(value: Any) -> str | None:
    """Timestamps as ISO-8601 text in UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    return str(value)


def _total_latency(value: Any) -> float | None:
    """``latency_ms`` may be a number or a per-stage mapping (its ``total``, else the sum)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        if isinstance(value.get("total"), int | float):
            return float(value["total"])
        numbers = [float(v) for v in value.values() if isinstance(v, int | float)]
        return sum(numbers) if numbers else None
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class SqlStore:
    """Persistence for drafts and what agents did with them (see the module docstring)."""

    def __init__(self, url: str, *, clock: Clock = _utcnow, busy_timeout_s: float = 10.0) -> None:
        if url.startswith("sqlite:///"):
            self._dialect = "sqlite"
            self._path = url.removeprefix("sqlite:///")
        elif url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            self._dialect = "postgresql"
            self._path = ""
        else:
            raise CopilotError(
                f"database URL {redact_url(url)!r} must start with sqlite:///, "
                "postgresql:// or postgres://"
            )
        self.url = url
        self._clock = clock
        self._busy_timeout_s = busy_timeout_s  # SQLite: how long to wait for another writer
        self._lock = threading.RLock()
        self._engine: Engine | None = None
        self._migrated = False

    @classmethod
    def from_url(
        cls, url: str, *, clock: Clock = _utcnow, busy_timeout_s: float = 10.0
    ) -> SqlStore:
        """A store for ``url``; nothing is opened until the first call."""
        return cls(url, clock=clock, busy_timeout_s=busy_timeout_s)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._dialect

    @property
    def where(self) -> str:
        """The database for messages: the SQLite file, or the URL without its password."""
        return self._path if self._dialect == "sqlite" else redact_url(self.url)

    def __repr__(self) -> str:
        return f"SqlStore({redact_url(self.url)!r})"

    # ---- engine, connections, errors -------------------------------------------------------
    def _build_engine(self) -> Engine:
        if self._dialect == "sqlite":
            return self._sqlite_engine()
        url = make_url(self.url).set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = 10
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
        )

    def _sqlite_engine(self) -> Engine:
        memory = self._path == ":memory:"
        if not memory:
            folder = Path(self._path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CopilotError(
                    f"cannot open database {self._path}: its folder {folder} does not exist "
                    f"and cannot be created ({exc.strerror or exc})"
                ) from None
        engine = create_engine(
            "sqlite+pysqlite:///" + self._path,
            connect_args={"timeout": self._busy_timeout_s, "check_same_thread": False},
            **({"poolclass": StaticPool} if memory else {}),
        )
        busy_ms = int(self._busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun below, not by sqlite3
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("PRAGMA foreign_keys = ON")
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                if not memory:
                    _use_wal(cursor, self._busy_timeout_s)
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now: no upgrade race

        return engine

    def _guard(self) -> AbstractContextManager[Any]:
        """SQLite calls of one store take turns; PostgreSQL's pool serves threads at once."""
        return self._lock if self._dialect == "sqlite" else nullcontext()

    def _ready_engine(self) -> Engine:
        with self._lock:
            if not self._migrated:
                self.upgrade()
            assert self._engine is not None
            return self._engine

    def upgrade(self) -> tuple[str | None, str]:
        """Bring the schema to the newest revision now; returns (revision before, after)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._build_engine()
            try:
                with self._engine.begin() as conn:
                    done = migrate.upgrade(conn)
            except CopilotError:
                raise
            except Exception as exc:
                if _is_database_error(exc):
                    raise CopilotError(self._error_text(exc)) from None
                raise
            self._migrated = True
            return done

    def status(self) -> migrate.SchemaStatus:
        """Where the schema stands, without changing anything (``copilot db current``)."""
        with self._lock:
            if self._engine is None:
                self._engine = self._build_engine()
            try:
                with self._engine.connect() as conn:
                    return migrate.status(conn)
            except CopilotError:
                raise
            except Exception as exc:
                if _is_database_error(exc):
                    raise CopilotError(self._error_text(exc)) from None
                raise

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One transaction on a ready database; driver errors become a clear CopilotError."""
        with self._guard():
            engine = self._ready_engine()
            try:
                with engine.begin() as conn:
                    yield conn
            except CopilotError:
                raise
            except Exception as exc:
                if _is_database_error(exc):
                    raise CopilotError(self._error_text(exc)) from None
                raise

    def _error_text(self, exc: BaseException) -> str:
        """A driver error as one line that names the database (its path, for SQLite)."""
        orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        if self._dialect == "sqlite":
            return f"database error (sqlite) in {self._path}: {_sqlite_hint(orig)}"
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        if _is_connect_error(orig):
            return f"cannot connect to database {redact_url(self.url)}: {first}"
        return f"database error (postgresql) in {redact_url(self.url)}: {first}"

    def _now(self) -> dt.datetime:
        return self._clock()

    def schema_revision(self) -> str | None:
        """The Alembic revision of the database (connects and migrates if needed)."""
        with self._tx() as conn:
            return migrate.current(conn)

    def schema_version(self) -> int:
        """The revision as a number: 2 for ``0002`` (connects and migrates if needed)."""
        return migrate.revision_number(self.schema_revision())

    def close(self) -> None:
        """Close every connection; the next call opens new ones."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
                self._migrated = False

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- drafts --------------------------------------------------------------------------
    def save_draft(
        self,
        result: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        origin: str | None = None,
        agent: str | None = None,
    ) -> str:
        """Store one draft (``DraftResult.to_dict()``) and its request; returns the new id.

        ``origin`` says which entry point made it (ui, cli, library).
        """
        message = request.get("customer_message")
        if not isinstance(message, str):
            raise CopilotError("save_draft: the request has no customer_message text")
        if origin is not None and origin not in ORIGINS:
            raise CopilotError(f"origin {origin!r} is not allowed; use one of {', '.join(ORIGINS)}")
        draft_id = uuid.uuid4().hex
        row = {
            "id": draft_id,
            "created_at": self._now(),
            "language": result.get("language"),
            "verdict": result.get("verdict"),
            "blocked": bool(result.get("blocked")),
            "abstained": bool(result.get("abstained")),
            "backend": result.get("backend"),
            "model": result.get("model"),
            "prompt_version": _str_or_none(result.get("prompt_version")),
            "prompt_sha256": _str_or_none(result.get("prompt_sha256")),
            "kb_version": _str_or_none(result.get("kb_version")),
            "latency_ms": _total_latency(result.get("latency_ms")),
            "customer_message": message,
            "draft": str(result.get("draft") or ""),
            "result": dict(result),
            "request": dict(request),
            "origin": origin,
            "agent": agent or None,
        }
        with self._tx() as conn:
            conn.execute(t.drafts.insert().values(**row))
        return draft_id

    def _draft_text(self, conn: Connection, draft_id: str) -> str:
        found = conn.execute(select(t.drafts.c.draft).where(t.drafts.c.id == draft_id)).first()
        if found is None:
            raise CopilotError(f"no draft with id {draft_id!r}")
        return str(found[0])

    def get_draft(self, draft_id: str) -> dict[str, Any] | None:
        """One draft with its ``result``, ``request``, ``feedback``, ``ratings`` and ``sent``."""
        d, f, s, r = t.drafts.c, t.feedback.c, t.sent_replies.c, t.ratings.c
        with self._tx() as conn:
            row = conn.execute(
                select(d.id, d.created_at, d.result, d.request, d.origin, d.agent).where(
                    d.id == draft_id
                )
            ).first()
            if row is None:
                return None
            feedback = conn.execute(
                select(f.id, f.created_at, f.rating, f.final_text, f.edited, f.note, f.agent)
                .where(f.draft_id == draft_id)
                .order_by(f.seq)
            ).all()
            sent = conn.execute(
                select(
                    s.id,
                    s.created_at,
                    s.final_text,
                    s.edited,
                    s.verdict,
                    s.rules,
                    s.override_reason,
                    s.agent,
                    s.edit_distance,
                )
                .where(s.draft_id == draft_id)
                .order_by(s.seq)
            ).all()
            ratings = conn.execute(
                select(r.id, r.agent, r.rating, r.reason, r.created_at, r.updated_at)
                .where(r.draft_id == draft_id)
                .order_by(r.seq)
            ).all()
            e = t.escalations.c
            escalations = conn.execute(
                select(e.id, e.created_at, e.agent, e.note)
                .where(e.draft_id == draft_id)
                .order_by(e.seq)
            ).all()
        return {
            "id": row.id,
            "created_at": _as_text(row.created_at),
            "result": row.result,
            "request": row.request,
            "origin": row.origin,
            "agent": row.agent,
            "feedback": [
                {
                    "id": x.id,
                    "created_at": _as_text(x.created_at),
                    "rating": x.rating,
                    "final_text": x.final_text,
                    "edited": bool(x.edited),
                    "note": x.note,
                    "agent": x.agent,
                }
                for x in feedback
            ],
            "ratings": [
                {
                    "id": x.id,
                    "agent": x.agent or None,
                    "rating": x.rating,
                    "reason": x.reason,
                    "created_at": _as_text(x.created_at),
                    "updated_at": _as_text(x.updated_at),
                }
                for x in ratings
            ],
            "sent": [
                {
                    "id": x.id,
                    "created_at": _as_text(x.created_at),
                    "final_text": x.final_text,
                    "edited": bool(x.edited),
                    "verdict": x.verdict,
                    "rules": [rule for rule in (x.rules or "").split(",") if rule],
                    "override_reason": x.override_reason,
                    "agent": x.agent,
                    "edit_distance": x.edit_distance,
                }
                for x in sent
            ],
            "escalations": [
                {
                    "id": x.id,
                    "created_at": _as_text(x.created_at),
                    "agent": x.agent,
                    "note": x.note,
                }
                for x in escalations
            ],
        }

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest drafts first, each with its latest feedback (rating, final text) if any."""
        if limit < 1:
            return []
        d, f = t.drafts.c, t.feedback.c
        count = (
            select(func.count()).select_from(t.feedback).where(f.draft_id == d.id)
        ).scalar_subquery()
        with self._tx() as conn:
            rows = conn.execute(
                select(
                    d.id,
                    d.created_at,
                    d.language,
                    d.verdict,
                    d.blocked,
                    d.abstained,
                    d.backend,
                    d.model,
                    d.prompt_version,
                    d.kb_version,
                    d.latency_ms,
                    d.customer_message,
                    d.draft,
                    d.origin,
                    count.label("feedback_count"),
                )
                .order_by(d.seq.desc())
                .limit(int(limit))
            ).all()
            latest: dict[str, Any] = {}
            ids = [r.id for r in rows if r.feedback_count]
            if ids:
                for row in conn.execute(
                    select(f.draft_id, f.rating, f.final_text, f.edited, f.note, f.agent)
                    .where(f.draft_id.in_(ids))
                    .order_by(f.seq)
                ):
                    latest[row.draft_id] = row  # later rows overwrite: the newest wins
        out = []
        for r in rows:
            fb = latest.get(r.id)
            out.append(
                {
                    "id": r.id,
                    "created_at": _as_text(r.created_at),
                    "language": r.language,
                    "verdict": r.verdict,
                    "blocked": bool(r.blocked),
                    "abstained": bool(r.abstained),
                    "backend": r.backend,
                    "model": r.model,
                    "prompt_version": r.prompt_version,
                    "kb_version": r.kb_version,
                    "latency_ms": r.latency_ms,
                    "customer_message": r.customer_message,
                    "draft": r.draft,
                    "origin": r.origin,
                    "feedback_count": int(r.feedback_count),
                    "rating": fb.rating if fb else None,
                    "final_text": fb.final_text if fb else None,
                    "edited": bool(fb.edited) if fb else None,
                    "note": fb.note if fb else None,
                    "agent": fb.agent if fb else None,
                }
            )
        return out

    def stats(self) -> dict[str, Any]:
        """Totals: drafts, blocked, abstained, per language, and feedback (latest per draft)."""
        d, f = t.drafts.c, t.feedback.c
        with self._tx() as conn:
            drafts, blocked, abstained = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(d.blocked.cast(Integer)), 0),
                    func.coalesce(func.sum(d.abstained.cast(Integer)), 0),
                ).select_from(t.drafts)
            ).one()
            languages = conn.execute(
                select(func.coalesce(d.language, ""), func.count()).group_by(d.language)
            ).all()
            feedback = conn.execute(select(f.draft_id, f.rating, f.edited).order_by(f.seq)).all()
        latest: dict[str, tuple[str, bool]] = {}
        for draft_id, rating, edited in feedback:
            latest[draft_id] = (rating, bool(edited))
        up = sum(1 for rating, _ in latest.values() if rating == "up")
        down = sum(1 for rating, _ in latest.values() if rating == "down")
        return {
            "drafts": int(drafts),
            "blocked": int(blocked),
            "abstained": int(abstained),
            "by_language": {str(lang): int(n) for lang, n in sorted(languages)},
            "feedback": len(feedback),
            "rated_drafts": len(latest),
            "up": up,
            "down": down,
            "edited": sum(1 for _, edited in latest.values() if edited),
            "approval_rate": round(up / (up + down), 3) if up + down else None,
        }

    def activity(self, limit: int = 25) -> list[dict[str, Any]]:
        """The newest drafts first, each with what agents did as separate fields.

        ``rating`` and ``rating_reason`` (the latest rating of any agent; ``ratings`` the number
        of agents who rated), ``sent`` (how many times a reply was sent), and of the latest send
        its ``sent_verdict``, ``override_reason``, ``edit_distance`` (characters changed from
        the draft) and ``sent_agent``; ``escalations`` (how many times it was escalated).
        Nothing here comes from the legacy ``feedback`` rows.
        """
        if limit < 1:
            return []
        d, r, s = t.drafts.c, t.ratings.c, t.sent_replies.c
        with self._tx() as conn:
            rows = _newest_drafts(conn, limit, d.origin)
            ids = [row.id for row in rows]
            ratings: dict[str, list[Any]] = {}
            sends: dict[str, list[Any]] = {}
            escalated: dict[str, int] = {}
            if ids:
                for x in conn.execute(
                    select(r.draft_id, r.agent, r.rating, r.reason, r.updated_at)
                    .where(r.draft_id.in_(ids))
                    .order_by(r.updated_at, r.seq)
                ):
                    ratings.setdefault(x.draft_id, []).append(x)
                for x in conn.execute(
                    select(s.draft_id, s.verdict, s.override_reason, s.edit_distance, s.agent)
                    .where(s.draft_id.in_(ids))
                    .order_by(s.seq)
                ):
                    sends.setdefault(x.draft_id, []).append(x)
                escalated = {
                    str(x.draft_id): int(x.n)
                    for x in conn.execute(
                        select(t.escalations.c.draft_id, func.count().label("n"))
                        .where(t.escalations.c.draft_id.in_(ids))
                        .group_by(t.escalations.c.draft_id)
                    )
                }
        out = []
        for row in rows:
            rated, sent = ratings.get(row.id, []), sends.get(row.id, [])
            last_rating = rated[-1] if rated else None
            last_sent = sent[-1] if sent else None
            out.append(
                {
                    "id": row.id,
                    "created_at": _as_text(row.created_at),
                    "language": row.language,
                    "verdict": row.verdict,
                    "blocked": bool(row.blocked),
                    "abstained": bool(row.abstained),
                    "customer_message": row.customer_message,
                    "draft": row.draft,
                    "origin": row.origin,
                    "agent": row.agent,
                    "rating": last_rating.rating if last_rating else None,
                    "rating_reason": last_rating.reason if last_rating else None,
                    "ratings": len(rated),
                    "sent": len(sent),
                    "sent_verdict": last_sent.verdict if last_sent else None,
                    "override_reason": last_sent.override_reason if last_sent else None,
                    "edit_distance": last_sent.edit_distance if last_sent else None,
                    "sent_agent": last_sent.agent if last_sent else None,
                    "escalations": escalated.get(row.id, 0),
                }
            )
        return out

    def feedback_totals(self) -> dict[str, Any]:
        """Ratings and sends counted apart: ``up``/``down`` (one per agent and draft, the
        current one), ``sent`` replies, ``sent_drafts``, ``overridden`` (sent although rejected),
        ``median_edit_distance`` over sent replies and ``approval_rate`` (up / rated)."""
        r, s = t.ratings.c, t.sent_replies.c
        with self._tx() as conn:
            counts: dict[str, int] = {
                str(rating): int(n)
                for rating, n in conn.execute(select(r.rating, func.count()).group_by(r.rating))
            }
            sent = conn.execute(
                select(s.draft_id, s.verdict, s.override_reason, s.edit_distance)
            ).all()
        up, down = int(counts.get("up", 0)), int(counts.get("down", 0))
        distances = sorted(x.edit_distance for x in sent if x.edit_distance is not None)
        median: float | None = None
        if distances:
            mid = len(distances) // 2
            median = (
                float(distances[mid])
                if len(distances) % 2
                else (distances[mid - 1] + distances[mid]) / 2
            )
        return {
            "up": up,
            "down": down,
            "approval_rate": round(up / (up + down), 3) if up + down else None,
            "sent": len(sent),
            "sent_drafts": len({x.draft_id for x in sent}),
            "overridden": sum(1 for x in sent if x.override_reason),
            "median_edit_distance": median,
        }

    def insight_rows(self, limit: int = 5000) -> list[dict[str, Any]]:
        """The newest ``limit`` drafts (newest first) with their stored result and every send
        (verdict, rules, override reason, edit distance, agent): what the Insights page reads."""
        if limit < 1:
            return []
        d, s = t.drafts.c, t.sent_replies.c
        with self._tx() as conn:
            rows = _newest_drafts(conn, limit, d.result)
            sends: dict[str, list[dict[str, Any]]] = {}
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 500):
                for x in conn.execute(
                    select(
                        s.draft_id,
                        s.created_at,
                        s.verdict,
                        s.rules,
                        s.override_reason,
                        s.edit_distance,
                        s.agent,
                    )
                    .where(s.draft_id.in_(ids[start : start + 500]))
                    .order_by(s.seq)
                ):
                    sends.setdefault(x.draft_id, []).append(
                        {
                            "created_at": _as_text(x.created_at),
                            "verdict": x.verdict,
                            "rules": [rule for rule in (x.rules or "").split(",") if rule],
                            "override_reason": x.override_reason,
                            "edit_distance": x.edit_distance,
                            "agent": x.agent,
                        }
                    )
        return [
            {
                "id": row.id,
                "created_at": _as_text(row.created_at),
                "language": row.language,
                "verdict": row.verdict,
                "blocked": bool(row.blocked),
                "abstained": bool(row.abstained),
                "customer_message": row.customer_message,
                "draft": row.draft,
                "result": row.result if isinstance(row.result, dict) else {},
                "agent": row.agent,
                "sent": sends.get(row.id, []),
            }
            for row in rows
        ]

    # ---- what agents did with a draft --------------------------------------------------------
    def save_feedback(
        self,
        draft_id: str,
        rating: str,
        final_text: str | None = None,
        note: str | None = None,
        agent: str | None = None,
    ) -> str:
        """Record an agent's rating (``up``/``down``) and the reply they sent; returns its id.

        Every call adds a row (the history the Activity tab counts); :meth:`save_rating`
        keeps one rating per agent and draft.
        """
        if rating not in RATINGS:
            raise CopilotError(f"rating {rating!r} is not allowed; use up or down")
        feedback_id = uuid.uuid4().hex
        with self._tx() as conn:
            draft = self._draft_text(conn, draft_id)
            edited = final_text is not None and final_text.strip() != draft.strip()
            conn.execute(
                t.feedback.insert().values(
                    id=feedback_id,
                    draft_id=draft_id,
                    created_at=self._now(),
                    rating=rating,
                    final_text=final_text,
                    edited=edited,
                    note=note or None,
                    agent=agent or None,
                )
            )
        return feedback_id

    def save_rating(
        self,
        draft_id: str,
        rating: str,
        *,
        agent: str | None = None,
        reason: str | None = None,
    ) -> str:
        """The agent's up/down on a draft, with an optional reason; returns the rating's id.

        A rating replaces the same agent's previous rating of the same draft (an agent
        without a name counts as one agent). Ratings are apart from sends (:meth:`save_sent`).
        """
        if rating not in RATINGS:
            raise CopilotError(f"rating {rating!r} is not allowed; use up or down")
        who = (agent or "").strip()
        now = self._now()
        r = t.ratings.c
        with self._tx() as conn:
            self._draft_text(conn, draft_id)
            found = conn.execute(select(r.id).where(r.draft_id == draft_id, r.agent == who)).first()
            if found is not None:
                conn.execute(
                    update(t.ratings)
                    .where(r.id == found.id)
                    .values(rating=rating, reason=(reason or "").strip() or None, updated_at=now)
                )
                return str(found.id)
            rating_id = uuid.uuid4().hex
            conn.execute(
                t.ratings.insert().values(
                    id=rating_id,
                    draft_id=draft_id,
                    agent=who,
                    rating=rating,
                    reason=(reason or "").strip() or None,
                    created_at=now,
                    updated_at=now,
                )
            )
        return rating_id

    def save_sent(
        self,
        draft_id: str,
        final_text: str,
        *,
        verdict: str,
        rules: Sequence[str] = (),
        override_reason: str | None = None,
        agent: str | None = None,
    ) -> str:
        """Record the reply the agent sent (copied) and the guardrail verdict of that exact text.

        A rejected text is recorded only with the agent's ``override_reason``; a send is not
        a rating. The edit distance between the draft and the sent text is stored with it.
        """
        if verdict not in ("pass", "reject"):
            raise CopilotError(f"verdict {verdict!r} is not allowed; use pass or reject")
        if verdict == "reject" and not (override_reason or "").strip():
            raise CopilotError("a rejected reply can only be sent with an override reason")
        sent_id = uuid.uuid4().hex
        with self._tx() as conn:
            draft = self._draft_text(conn, draft_id).strip()
            sent = final_text.strip()
            conn.execute(
                t.sent_replies.insert().values(
                    id=sent_id,
                    draft_id=draft_id,
                    created_at=self._now(),
                    final_text=final_text,
                    edited=sent != draft,
                    verdict=verdict,
                    rules=",".join(rules) or None,
                    override_reason=(override_reason or "").strip() or None,
                    agent=agent or None,
                    edit_distance=edit_distance(draft, sent),
                )
            )
        return sent_id

    def save_escalation(self, draft_id: str, note: str, *, agent: str | None = None) -> str:
        """Record that the agent escalated a draft's ticket, with the internal hand-over
        ``note`` (written masked); returns the escalation's id."""
        if not isinstance(note, str) or not note.strip():
            raise CopilotError("an escalation needs its hand-over note (non-empty text)")
        escalation_id = uuid.uuid4().hex
        with self._tx() as conn:
            self._draft_text(conn, draft_id)
            conn.execute(
                t.escalations.insert().values(
                    id=escalation_id,
                    draft_id=draft_id,
                    created_at=self._now(),
                    agent=(agent or "").strip() or None,
                    note=note,
                )
            )
        return escalation_id

    # ---- agent settings and ticket state ---------------------------------------------------
    def save_agent_settings(
        self,
        agent: str,
        *,
        display_name: str | None = None,
        ui_language: str | None = None,
        signatures: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create or change an agent's settings; ``None`` leaves a value as it is.

        ``signatures`` maps a reply language (en, ja, zh) to the agent's signature in it and
        is merged into the stored ones (an empty text removes one). Returns the settings.
        """
        who = (agent or "").strip()
        if not who:
            raise CopilotError("agent settings need the agent's id (a non-empty name)")
        if ui_language is not None and ui_language not in LANGUAGES:
            raise CopilotError(
                f"ui_language {ui_language!r} is not allowed; use one of {', '.join(LANGUAGES)}"
            )
        for language, signature in (signatures or {}).items():
            if language not in LANGUAGES or not isinstance(signature, str):
                raise CopilotError(
                    f"signatures: {language!r} must be one of {', '.join(LANGUAGES)} "
                    "with a text signature"
                )
        a = t.agent_settings.c
        with self._tx() as conn:
            row = conn.execute(select(t.agent_settings).where(a.agent == who)).first()
            merged = dict(row.signatures) if row is not None else {}
            for language, signature in (signatures or {}).items():
                if signature.strip():
                    merged[language] = signature
                else:
                    merged.pop(language, None)
            values = {
                "display_name": display_name
                if display_name is not None
                else (row.display_name if row else None),
                "ui_language": ui_language
                if ui_language is not None
                else (row.ui_language if row else None),
                "signatures": merged,
                "updated_at": self._now(),
            }
            if row is None:
                conn.execute(t.agent_settings.insert().values(agent=who, **values))
            else:
                conn.execute(update(t.agent_settings).where(a.agent == who).values(**values))
        return {"agent": who, **values, "updated_at": _as_text(values["updated_at"])}

    def get_agent_settings(self, agent: str) -> dict[str, Any] | None:
        """An agent's display name, UI language and signatures; None when never saved."""
        a = t.agent_settings.c
        with self._tx() as conn:
            row = conn.execute(select(t.agent_settings).where(a.agent == agent.strip())).first()
        if row is None:
            return None
        return {
            "agent": row.agent,
            "display_name": row.display_name,
            "ui_language": row.ui_language,
            "signatures": dict(row.signatures or {}),
            "updated_at": _as_text(row.updated_at),
        }

    def save_ticket_state(
        self, draft_id: str, state: Mapping[str, Any], *, agent: str | None = None
    ) -> None:
        """Remember the workspace state of a draft's ticket (replacing the previous one)."""
        if not isinstance(state, Mapping):
            raise CopilotError("ticket state must be a mapping of names to JSON values")
        k = t.ticket_states.c
        with self._tx() as conn:
            self._draft_text(conn, draft_id)
            values = {"state": dict(state), "agent": agent or None, "updated_at": self._now()}
            changed = conn.execute(
                update(t.ticket_states).where(k.draft_id == draft_id).values(**values)
            ).rowcount
            if not changed:
                conn.execute(t.ticket_states.insert().values(draft_id=draft_id, **values))

    def get_ticket_state(self, draft_id: str) -> dict[str, Any] | None:
        """The last saved ticket state of a draft: ``{"state", "agent", "updated_at"}``."""
        k = t.ticket_states.c
        with self._tx() as conn:
            row = conn.execute(select(t.ticket_states).where(k.draft_id == draft_id)).first()
        if row is None:
            return None
        return {"state": row.state, "agent": row.agent, "updated_at": _as_text(row.updated_at)}


def _newest_drafts(conn: Connection, limit: int, extra: Any) -> Sequence[Any]:
    """The newest ``limit`` drafts, newest first: what every list shows, plus ``extra``."""
    d = t.drafts.c
    return conn.execute(
        select(
            d.id,
            d.created_at,
            d.language,
            d.verdict,
            d.blocked,
            d.abstained,
            d.customer_message,
            d.draft,
            extra,
            d.agent,
        )
        .order_by(d.seq.desc())
        .limit(int(limit))
    ).all()


def _use_wal(cursor: Any, wait_s: float) -> None:
    """Put the database file in WAL mode (it stays so), waiting for other connections.

    Switching the journal mode needs the file to itself, and SQLite answers "database is
    locked" at once instead of calling its busy handler; several stores opening a new file
    together hit that. So the switch is retried for up to ``wait_s``, and skipped when the
    file is already in WAL mode (every open after the first).
    """
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()
            if mode and str(mode[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def _is_database_error(exc: BaseException) -> bool:
    """SQLAlchemy's errors and the drivers' own (raised in connect hooks, for one)."""
    return isinstance(exc, SQLAlchemyError | sqlite3.Error) or _from_psycopg(exc)


def _from_psycopg(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "psycopg"


def _is_connect_error(exc: BaseException) -> bool:
    """True for a failure to reach or log in to the server (not a failed statement)."""
    return _from_psycopg(exc) and type(exc).__name__ in ("OperationalError", "ConnectionTimeout")


def _sqlite_hint(exc: BaseException) -> str:
    """The SQLite error with what to do about the usual causes."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return f"{text} (another process is writing to it; try again)"
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return f"{text} (the file is damaged or not SQLite; it was left untouched)"
    if "unable to open" in low or "readonly" in low or "read-only" in low:
        return f"{text} (check that the file and its folder exist and are writable)"
    return text
