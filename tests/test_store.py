"""The draft/feedback store, on SQLite always and on a real PostgreSQL server when installed."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import CopilotError
from copilot.store import SqlStore, Store, redact_url
from copilot.store.migrate import head
from tests.pg import postgres_server, unavailable_reason

PG_REASON = unavailable_reason()
HEAD = head()  # the newest schema revision, "0003"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a private PostgreSQL server for the whole session (skips when not installed)."""
    if PG_REASON is not None:
        pytest.skip(PG_REASON)
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'copilot.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An empty store, closed afterwards."""
    s = SqlStore.from_url(db_url)
    yield s
    s.close()


def result_dict(draft: str = "Hello Aki, see [1].", **over: Any) -> dict[str, Any]:
    """A ``DraftResult.to_dict()``-shaped mapping."""
    base: dict[str, Any] = {
        "draft": draft,
        "language": "en",
        "sources": [{"id": "faq/deposit", "title": "Deposits", "language": "en"}],
        "verdict": "pass",
        "violations": [],
        "flags": [{"kind": "emotion", "span": None, "detail": "calm", "level": 0}],
        "attempts": 1,
        "blocked": False,
        "abstained": False,
        "backend": "offline",
        "model": "kb-templates",
        "prompt_version": "3",
        "prompt_sha256": "ab" * 32,
        "kb_version": "kb-1234",
        "tokens": {"prompt": 10, "completion": 5},
        "latency_ms": {"retrieval": 12.5, "generation": 30.0, "guardrails": 2.5},
        "removed_citations": [],
    }
    base.update(over)
    return base


def request_dict(message: str = "My deposit has not arrived.", **over: Any) -> dict[str, Any]:
    """A ``DraftRequest``-shaped mapping."""
    base: dict[str, Any] = {"customer_message": message, "language": None, "history": []}
    base.update(over)
    return base


def test_construction_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "later" / "copilot.db"
    SqlStore.from_url(f"sqlite:///{path}")
    SqlStore.from_url("postgresql://nobody:secret@127.0.0.1:1/nothing")
    assert not path.parent.exists()


def test_rejects_unknown_url_scheme() -> None:
    with pytest.raises(CopilotError, match="must start with sqlite:///"):
        SqlStore.from_url("mysql://root:pw@localhost/db")


def test_unreachable_postgres_is_a_clear_error_without_password() -> None:
    store = SqlStore.from_url("postgresql://agent:s3cret@127.0.0.1:1/copilot?connect_timeout=2")
    with pytest.raises(CopilotError, match="cannot connect to database") as err:
        store.stats()
    assert "s3cret" not in str(err.value)
    assert "agent:***@127.0.0.1:1" in str(err.value)


def test_redact_url_keeps_urls_without_password() -> None:
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://u:p@h:5/db") == "postgresql://u:***@h:5/db"


def test_round_trip_draft_and_request(store: Store) -> None:
    result = result_dict("こんにちは、Akiさん。入金は反映済みです [1]。", language="ja")
    request = request_dict("入金が反映されません", language="ja", customer_name="Aki")
    draft_id = store.save_draft(result, request)

    got = store.get_draft(draft_id)
    assert got is not None
    assert got["result"] == result
    assert got["request"] == request
    assert got["feedback"] == []
    assert store.get_draft("missing") is None


def test_recent_lists_newest_first_with_summary_fields(store: Store) -> None:
    first = store.save_draft(result_dict("one"), request_dict("first message"))
    second = store.save_draft(
        result_dict("two", verdict="reject", blocked=True, language="zh"),
        request_dict("第二条消息"),
    )
    rows = store.recent(10)
    assert [r["id"] for r in rows] == [second, first]
    top = rows[0]
    assert top["verdict"] == "reject" and top["blocked"] is True and top["language"] == "zh"
    assert top["customer_message"] == "第二条消息" and top["draft"] == "two"
    assert top["latency_ms"] == pytest.approx(45.0)  # stages summed
    assert top["rating"] is None and top["feedback_count"] == 0
    assert [r["id"] for r in store.recent(1)] == [second]
    assert store.recent(0) == []


def test_feedback_latest_rating_wins_and_edits_are_detected(store: Store) -> None:
    draft_id = store.save_draft(result_dict("Original reply."), request_dict())
    store.save_feedback(draft_id, "down", None, "too long", "mika")
    store.save_feedback(draft_id, "up", "Edited reply.", None, "mika")

    (row,) = store.recent(5)
    assert row["rating"] == "up"
    assert row["final_text"] == "Edited reply."
    assert row["edited"] is True
    assert row["feedback_count"] == 2
    full = store.get_draft(draft_id)
    assert full is not None
    assert [f["rating"] for f in full["feedback"]] == ["down", "up"]
    assert full["feedback"][0]["note"] == "too long"
    assert full["feedback"][0]["agent"] == "mika"


def test_feedback_with_unchanged_text_is_not_an_edit(store: Store) -> None:
    draft_id = store.save_draft(result_dict("Same reply."), request_dict())
    store.save_feedback(draft_id, "up", "Same reply.\n", None, None)
    assert store.recent(1)[0]["edited"] is False


def test_feedback_validation(store: Store) -> None:
    draft_id = store.save_draft(result_dict(), request_dict())
    with pytest.raises(CopilotError, match="rating 'meh' is not allowed"):
        store.save_feedback(draft_id, "meh", None, None, None)
    with pytest.raises(CopilotError, match="no draft with id"):
        store.save_feedback("nope", "up", None, None, None)
    assert store.stats()["feedback"] == 0


def test_save_draft_needs_the_customer_message(store: Store) -> None:
    with pytest.raises(CopilotError, match="customer_message"):
        store.save_draft(result_dict(), {"language": "en"})


def test_stats(store: Store) -> None:
    assert store.stats() == {
        "drafts": 0,
        "blocked": 0,
        "abstained": 0,
        "by_language": {},
        "feedback": 0,
        "rated_drafts": 0,
        "up": 0,
        "down": 0,
        "edited": 0,
        "approval_rate": None,
    }
    a = store.save_draft(result_dict("a"), request_dict())
    b = store.save_draft(result_dict("b", language="ja", blocked=True), request_dict())
    store.save_draft(result_dict("c", language="ja", abstained=True), request_dict())
    store.save_feedback(a, "down", None, None, None)
    store.save_feedback(a, "up", "a, edited", None, None)
    store.save_feedback(b, "down", None, None, None)

    stats = store.stats()
    assert stats["drafts"] == 3 and stats["blocked"] == 1 and stats["abstained"] == 1
    assert stats["by_language"] == {"en": 1, "ja": 2}
    assert stats["feedback"] == 3 and stats["rated_drafts"] == 2
    assert (stats["up"], stats["down"], stats["edited"]) == (1, 1, 1)
    assert stats["approval_rate"] == 0.5


def test_migrations_are_idempotent(db_url: str) -> None:
    one, two = SqlStore.from_url(db_url), SqlStore.from_url(db_url)
    try:
        draft_id = one.save_draft(result_dict(), request_dict())
        assert two.schema_version() == int(HEAD)
        assert two.get_draft(draft_id) is not None
        one.close()
        with SqlStore.from_url(db_url) as three:
            assert three.schema_version() == int(HEAD)
    finally:
        one.close()
        two.close()


def test_sqlite_records_the_revision_once_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "copilot.db"
    for _ in range(3):
        s = SqlStore.from_url(f"sqlite:///{path}")
        s.save_draft(result_dict(), request_dict())
        s.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        assert conn.execute("SELECT COUNT(*) FROM drafts").fetchone() == (3,)


def test_sqlite_in_memory() -> None:
    s = SqlStore.from_url("sqlite:///:memory:")
    s.save_draft(result_dict(), request_dict())
    assert s.stats()["drafts"] == 1


def test_injected_clock_sets_timestamps(db_url: str) -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    s = SqlStore.from_url(db_url, clock=lambda: when)
    try:
        draft_id = s.save_draft(result_dict(), request_dict())
        s.save_feedback(draft_id, "up", None, None, None)
        got = s.get_draft(draft_id)
        assert got is not None
        assert dt.datetime.fromisoformat(got["created_at"]) == when
        assert dt.datetime.fromisoformat(got["feedback"][0]["created_at"]) == when
    finally:
        s.close()


def test_shared_store_is_thread_safe(store: Store) -> None:
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for i in range(10):
                draft_id = store.save_draft(result_dict(f"{n}-{i}"), request_dict())
                store.save_feedback(draft_id, "up" if i % 2 else "down", None, None, None)
                store.recent(3)
                with lock:
                    ids.append(draft_id)
        except BaseException as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 60
    stats = store.stats()
    assert (stats["drafts"], stats["feedback"], stats["up"], stats["down"]) == (60, 60, 30, 30)


def test_postgres_replaces_a_connection_the_server_dropped(pg_url: str) -> None:
    import psycopg

    s = SqlStore.from_url(pg_url)
    try:
        s.save_draft(result_dict(), request_dict())
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert killed, "the store held no connection to drop"
        # the pool checks a connection before use and replaces a dead one: no failed call
        assert s.stats()["drafts"] == 1
        s.save_draft(result_dict(), request_dict())
        assert s.stats()["drafts"] == 2
    finally:
        s.close()


def test_postgres_stores_jsonb_and_timestamptz(pg_url: str) -> None:
    import psycopg

    s = SqlStore.from_url(pg_url)
    try:
        s.save_draft(result_dict(language="zh"), request_dict("我的提现还没到账"))
    finally:
        s.close()
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT result->>'language', request->>'customer_message', "
            "pg_typeof(created_at)::text FROM drafts"
        ).fetchone()
    assert row == ("zh", "我的提现还没到账", "timestamp with time zone")


# ---- SQLite failure paths: a clear CopilotError naming the file, nothing stored is lost ----------
def _filled(path: Path, n: int = 2) -> list[str]:
    with SqlStore.from_url(f"sqlite:///{path}") as s:
        return [s.save_draft(result_dict(f"draft {i}"), request_dict()) for i in range(n)]


def _ids_on_disk(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM drafts ORDER BY seq")]


def test_a_missing_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "copilot.db"
    with SqlStore.from_url(f"sqlite:///{path}") as s:
        draft_id = s.save_draft(result_dict(), request_dict())
    assert _ids_on_disk(path) == [draft_id]


def test_a_missing_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    path = blocker / "data" / "copilot.db"
    s = SqlStore.from_url(f"sqlite:///{path}")
    with pytest.raises(CopilotError, match="cannot be created") as err:
        s.save_draft(result_dict(), request_dict())
    assert str(path) in str(err.value) and err.value.exit_code == 2
    assert blocker.read_text(encoding="utf-8") == "a file where the folder should be"


def test_an_unwritable_folder_is_a_clear_error() -> None:
    # /proc exists but no file can be created in it, not even by root
    path = "/proc/copilot-store-test/copilot.db"
    with pytest.raises(CopilotError, match="cannot be created") as err:
        SqlStore.from_url(f"sqlite:///{path}").stats()
    assert path in str(err.value)
    path = "/proc/copilot-store-test.db"
    with pytest.raises(CopilotError, match="unable to open database file") as err:
        SqlStore.from_url(f"sqlite:///{path}").save_draft(result_dict(), request_dict())
    assert path in str(err.value) and "writable" in str(err.value)


_CHILD = """
import json, sys
from copilot.errors import CopilotError
from copilot.store import SqlStore
store = SqlStore.from_url(sys.argv[1])
out = []
for call in (lambda: store.save_draft({"draft": "x"}, {"customer_message": "hi"}), store.recent):
    try:
        call()
        out.append("ok")
    except CopilotError as exc:
        out.append(str(exc))
print(json.dumps(out))
"""


def _without_write_permission(url: str) -> list[str]:
    """Run ``_CHILD`` on ``url`` as a process that obeys file permissions (root does not: it
    runs in a user namespace, where root's files are not its own to override)."""
    import os
    import shutil
    import subprocess
    import sys

    cmd = [sys.executable, "-c", _CHILD, url]
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare(1): cannot drop the permission override")
        cmd = ["unshare", "--user", *cmd]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        cmd,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0 and "unshare" in done.stderr and "Traceback" not in done.stderr:
        pytest.skip(f"user namespaces are not available here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr  # a CopilotError, never a traceback
    result: list[str] = __import__("json").loads(done.stdout)
    return result


def test_a_read_only_folder_is_a_clear_error_and_keeps_what_is_stored(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    path = folder / "copilot.db"
    ids = _filled(path)
    before = path.read_bytes()
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        save, read = _without_write_permission(f"sqlite:///{path}")
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert str(path) in save and ("readonly" in save or "unable to open" in save), save
    assert "writable" in save
    assert read == "ok" or str(path) in read, read
    assert path.read_bytes() == before and _ids_on_disk(path) == ids


def test_a_database_locked_by_another_writer_is_a_clear_error_and_loses_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "copilot.db"
    ids = _filled(path)
    s = SqlStore.from_url(f"sqlite:///{path}", busy_timeout_s=0.2)
    assert s.stats()["drafts"] == 2  # open before the lock
    fresh = SqlStore.from_url(f"sqlite:///{path}", busy_timeout_s=0.2)  # first used during it
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        with pytest.raises(CopilotError, match="database is locked") as err:
            s.save_draft(result_dict("while locked"), request_dict())
        assert str(path) in str(err.value) and "another process" in str(err.value)
        with pytest.raises(CopilotError, match="database is locked") as err:
            fresh.stats()  # first use: the schema check waits for the lock too
        assert str(path) in str(err.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    # the lock is gone: both stores work again and nothing was lost or half-written
    assert [d["draft"] for d in s.recent(10)] == ["draft 1", "draft 0"]
    new_id = fresh.save_draft(result_dict("after the lock"), request_dict())
    s.close()
    fresh.close()
    assert _ids_on_disk(path) == [*ids, new_id]


@pytest.mark.parametrize(
    "content",
    [b"this is not a database, just some bytes " * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_a_corrupt_file_is_a_clear_error_and_is_left_untouched(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "copilot.db"
    path.write_bytes(content)
    s = SqlStore.from_url(f"sqlite:///{path}")
    for call in (s.stats, lambda: s.save_draft(result_dict(), request_dict())):
        with pytest.raises(CopilotError) as err:
            call()
        message = str(err.value)
        assert str(path) in message and "Traceback" not in message
        assert "not a database" in message or "malformed" in message, message
        assert "left untouched" in message
    s.close()
    assert path.read_bytes() == content


def test_sent_replies_are_not_ratings_and_a_rejected_one_needs_a_reason(tmp_path: Path) -> None:
    s = SqlStore.from_url(f"sqlite:///{tmp_path / 'sent.db'}")
    draft_id = s.save_draft(result_dict(), request_dict())
    with pytest.raises(CopilotError, match="override reason"):
        s.save_sent(
            draft_id, "Send me your 2FA code.", verdict="reject", rules=["credential_request"]
        )
    sent_id = s.save_sent(
        draft_id,
        "Send me your 2FA code.",
        verdict="reject",
        rules=["credential_request"],
        override_reason="quoting the scam message back to the customer",
        agent="Mika",
    )
    with pytest.raises(CopilotError, match="no draft"):
        s.save_sent("nope", "text", verdict="pass")
    with pytest.raises(CopilotError, match="verdict"):
        s.save_sent(draft_id, "text", verdict="maybe")
    stored = s.get_draft(draft_id)
    assert stored is not None and stored["feedback"] == []
    (sent,) = stored["sent"]
    assert sent["id"] == sent_id and sent["edited"] is True
    assert sent["rules"] == ["credential_request"] and sent["agent"] == "Mika"
    assert s.stats()["up"] == 0
    s.close()


# ---- Alembic: adopting a 0.1.0 database, revisions, the db verb --------------------------------
def test_a_0_1_0_database_is_adopted_without_losing_a_row(db_url: str) -> None:
    from tests.store_v010 import WHEN, make_v010_database

    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    old = make_v010_database(db_url)
    with SqlStore.from_url(db_url) as s:
        assert s.schema_version() == int(HEAD)
        rows = s.recent(10)
        assert [r["id"] for r in rows] == old.draft_ids[::-1]
        assert rows[-1]["customer_message"] == "My deposit has not arrived."
        assert rows[-1]["latency_ms"] == pytest.approx(31.5) and rows[-1]["origin"] is None
        first = s.get_draft(old.draft_ids[0])
        assert first is not None
        assert dt.datetime.fromisoformat(first["created_at"]) == WHEN
        assert first["result"]["language"] == "en" and first["request"]["history"] == []
        assert [(f["rating"], f["note"], f["agent"]) for f in first["feedback"]] == [
            (rating, note, agent) for d, rating, note, agent in old.feedback if d == first["id"]
        ]
        # each agent's latest feedback became their rating; the feedback rows stay as they were
        assert {(r["agent"], r["rating"], r["reason"]) for r in first["ratings"]} == {
            ("mika", "up", None),
            ("ken", "down", "wrong fee"),
        }
        (sent,) = first["sent"]
        assert sent["final_text"] == old.sent[0][1] and sent["agent"] == "mika"
        assert sent["edit_distance"] == 10  # "30 min" -> "about 30 minutes": filled in
        second = s.get_draft(old.draft_ids[1])
        assert second is not None and [(r["agent"], r["rating"]) for r in second["ratings"]] == [
            (None, "up")
        ]
        stats = s.stats()
        assert (stats["drafts"], stats["feedback"], stats["up"], stats["down"]) == (3, 4, 1, 1)
        # new writes go to the adopted tables
        new = s.save_draft(result_dict("after the upgrade"), request_dict(), origin="cli")
        s.save_rating(new, "up", agent="mika")
        assert [r["id"] for r in s.recent(1)] == [new]
    # 0.1.0's own bookkeeping is kept, untouched
    import sqlalchemy as sa

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            assert conn.execute(
                sa.text("SELECT version FROM schema_migrations ORDER BY version")
            ).fetchall() == [(1,), (2,)]
            assert conn.execute(sa.text("SELECT COUNT(*) FROM feedback")).scalar() == 4
    finally:
        engine.dispose()


def test_a_database_with_only_the_first_0_1_0_migration_gets_the_rest(tmp_path: Path) -> None:
    from tests.store_v010 import make_v010_database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_v010_database(url, migrations=1)
    with SqlStore.from_url(url) as s:
        sent = s.save_sent(old.draft_ids[2], "您好，提现通常在30分钟内到账。", verdict="pass")
        stored = s.get_draft(old.draft_ids[2])
        assert stored is not None and [x["id"] for x in stored["sent"]] == [sent]
        assert stored["sent"][0]["edit_distance"] == 0 and stored["sent"][0]["edited"] is False
        assert s.stats()["drafts"] == 3


def test_stores_starting_at_once_migrate_a_new_database_once(db_url: str) -> None:
    stores = [SqlStore.from_url(db_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def first_use(store: SqlStore) -> None:
        try:
            barrier.wait()
            store.save_draft(result_dict(), request_dict())
        except BaseException as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert stores[0].stats()["drafts"] == 4
        assert stores[0].status().current == HEAD and stores[0].status().up_to_date
    finally:
        for s in stores:
            s.close()


def test_the_tables_match_the_migrations(db_url: str) -> None:
    """schema.py (what queries use) and the revisions (what creates the tables) agree."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from copilot.store.migrate import script_head
    from copilot.store.schema import metadata

    assert script_head() == HEAD
    with SqlStore.from_url(db_url) as s:
        s.stats()
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diffs = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    kinds = ("add_table", "remove_table", "add_column", "remove_column", "add_index",
             "remove_index")  # fmt: skip
    missing = [d for d in diffs if isinstance(d, tuple) and d[0] in kinds]
    assert missing == [], missing


def test_revision_0002_goes_down_and_up_again_keeping_the_drafts(db_url: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from copilot.store.migrate import _config

    with SqlStore.from_url(db_url) as s:
        draft_id = s.save_draft(result_dict(), request_dict(), origin="ui", agent="mika")
        s.save_rating(draft_id, "up", agent="mika")
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
            assert not sa.inspect(conn).has_table("ratings")
            with pytest.raises(NotImplementedError, match="baseline"):
                command.downgrade(config, "base")
    finally:
        engine.dispose()
    with SqlStore.from_url(db_url) as s:
        assert s.status().current == "0001"
        assert s.upgrade() == ("0001", HEAD)
        got = s.get_draft(draft_id)
        assert got is not None and got["ratings"] == [] and got["origin"] is None


def test_a_database_from_a_newer_copilot_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'copilot.db'}"
    with SqlStore.from_url(url) as s:
        s.stats()
    with sqlite3.connect(tmp_path / "copilot.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    with SqlStore.from_url(url) as s:
        with pytest.raises(CopilotError, match=r"revision 0099, newer than this copilot knows"):
            s.stats()
        with pytest.raises(CopilotError, match="0099"):
            s.status()


def test_the_developer_alembic_environment_uses_sqlalchemy_url(tmp_path: Path) -> None:
    """``alembic`` itself (e.g. ``alembic revision``) works with the URL in its config."""
    from alembic import command

    from copilot.store.migrate import _config

    path = tmp_path / "dev.db"
    config = _config()
    config.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    command.upgrade(config, "head")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


# ---- the agent workspace's fields -------------------------------------------------------------
def test_a_rating_replaces_the_agents_previous_one(store: Store) -> None:
    draft_id = store.save_draft(result_dict(), request_dict())
    first = store.save_rating(draft_id, "down", agent="mika", reason="too long")
    again = store.save_rating(draft_id, "up", agent="mika")
    other = store.save_rating(draft_id, "down", agent="ken", reason="  wrong fee ")
    anonymous = store.save_rating(draft_id, "up")
    assert store.save_rating(draft_id, "down", agent="") == anonymous  # one unnamed agent
    assert first == again and len({first, other, anonymous}) == 3
    got = store.get_draft(draft_id)
    assert got is not None
    assert [(r["agent"], r["rating"], r["reason"]) for r in got["ratings"]] == [
        ("mika", "up", None),
        ("ken", "down", "wrong fee"),
        (None, "down", None),
    ]
    assert got["feedback"] == [] and got["sent"] == []  # ratings are neither feedback nor sends
    with pytest.raises(CopilotError, match="rating 'meh' is not allowed"):
        store.save_rating(draft_id, "meh", agent="mika")
    with pytest.raises(CopilotError, match="no draft with id"):
        store.save_rating("nope", "up", agent="mika")


def test_sent_replies_record_the_edit_distance_and_drafts_their_origin(store: Store) -> None:
    draft_id = store.save_draft(
        result_dict("Withdrawals take 30 minutes [1]."),
        request_dict(),
        origin="library",
        agent="mika",
    )
    store.save_sent(draft_id, "Withdrawals take up to 30 minutes [1].\n", verdict="pass")
    store.save_sent(draft_id, "Withdrawals take 30 minutes [1].", verdict="pass", agent="ken")
    got = store.get_draft(draft_id)
    assert got is not None and (got["origin"], got["agent"]) == ("library", "mika")
    assert [(x["edit_distance"], x["edited"], x["agent"]) for x in got["sent"]] == [
        (6, True, None),
        (0, False, "ken"),
    ]
    assert store.recent(1)[0]["origin"] == "library"
    with pytest.raises(CopilotError, match="origin 'cron' is not allowed"):
        store.save_draft(result_dict(), request_dict(), origin="cron")


def test_agent_settings_are_kept_per_agent_and_merged(store: Store) -> None:
    assert store.get_agent_settings("mika") is None
    saved = store.save_agent_settings(
        "mika",
        display_name="Mika S.",
        ui_language="ja",
        signatures={"ja": "サポート担当 ミカ", "en": "Mika, Support"},
    )
    assert saved["signatures"] == {"ja": "サポート担当 ミカ", "en": "Mika, Support"}
    store.save_agent_settings("mika", signatures={"en": "", "zh": "客服 Mika"})
    store.save_agent_settings("ken", ui_language="en")
    mika = store.get_agent_settings(" mika ")
    assert mika is not None
    assert (mika["display_name"], mika["ui_language"]) == ("Mika S.", "ja")
    assert mika["signatures"] == {"ja": "サポート担当 ミカ", "zh": "客服 Mika"}
    ken = store.get_agent_settings("ken")
    assert ken is not None and ken["signatures"] == {} and ken["display_name"] is None
    for bad, match in (
        ({"ui_language": "fr"}, "ui_language 'fr' is not allowed"),
        ({"signatures": {"fr": "x"}}, "signatures: 'fr' must be one of"),
    ):
        with pytest.raises(CopilotError, match=match):
            store.save_agent_settings("mika", **bad)
    with pytest.raises(CopilotError, match="agent's id"):
        store.save_agent_settings("  ")


def test_ticket_state_is_restored_after_a_reload(db_url: str) -> None:
    with SqlStore.from_url(db_url) as s:
        draft_id = s.save_draft(result_dict(), request_dict())
        assert s.get_ticket_state(draft_id) is None
        s.save_ticket_state(draft_id, {"draft_text": "first", "tone": "concise"}, agent="mika")
        s.save_ticket_state(draft_id, {"draft_text": "edited 編集", "tone": "formal"})
        with pytest.raises(CopilotError, match="no draft with id"):
            s.save_ticket_state("nope", {"x": 1})
        with pytest.raises(CopilotError, match="must be a mapping"):
            s.save_ticket_state(draft_id, ["not", "a", "mapping"])  # type: ignore[arg-type]
    with SqlStore.from_url(db_url) as reopened:  # a reload: a new process, a new store
        got = reopened.get_ticket_state(draft_id)
    assert got is not None
    assert got["state"] == {"draft_text": "edited 編集", "tone": "formal"}
    assert got["agent"] is None and got["updated_at"]


def test_the_db_verb_reports_and_upgrades_a_0_1_0_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.cli.main import main
    from tests.store_v010 import make_v010_database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    make_v010_database(url)
    monkeypatch.setenv("COPILOT_DATABASE_URL", url)
    assert main(["db", "current"]) == 1
    out = capsys.readouterr().out
    assert "made by 0.1.0 (schema_migrations 1, 2)" in out and "0001 The 0.1.0 schema" in out
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert "upgraded from the 0.1.0 schema (schema_migrations 1, 2) to revision 0003" in out
    assert main(["db", "current", "--json"]) == 0
    status = __import__("json").loads(capsys.readouterr().out)
    assert status["revision"] == HEAD and status["up_to_date"] and status["pending"] == []
    assert main(["db", "upgrade", "--json"]) == 0
    assert __import__("json").loads(capsys.readouterr().out)["changed"] is False
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert main(["db", "current", "--url", fresh]) == 1
    assert "no schema yet" in capsys.readouterr().out
    assert main(["db", "current", "--url", "postgresql://u:s3cret@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to database" in err and "s3cret" not in err


def test_a_new_sqlite_file_locked_by_another_connection_is_waited_for(tmp_path: Path) -> None:
    """Switching a new file to WAL needs it to itself, and SQLite does not wait for that on
    its own: a store opened while another connection holds the file waits, then works."""
    path = tmp_path / "held.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE held (x)")
    other.execute("BEGIN IMMEDIATE")  # a writer's lock: SQLite's busy wait skips the WAL switch
    other.execute("INSERT INTO held VALUES (1)")
    release = threading.Timer(0.4, other.execute, args=("COMMIT",))
    release.start()
    try:
        with SqlStore.from_url(f"sqlite:///{path}", busy_timeout_s=5.0) as store:
            store.save_draft(result_dict(), request_dict())
            assert store.stats()["drafts"] == 1
    finally:
        release.join()
        other.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        check.close()
