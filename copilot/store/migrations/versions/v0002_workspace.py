"""What the agent workspace needs: ratings apart from sends, edit distance, agent settings,
ticket state, and where each draft came from.

* ``drafts``: ``origin`` (ui, cli, library), ``agent``, ``prompt_sha256`` (nullable: rows
  made before this revision have none).
* ``sent_replies.edit_distance``: characters changed between the draft and the sent text;
  filled in for the replies already stored.
* ``ratings``: one up/down (with an optional reason) per draft and agent, a new rating
  replacing the agent's previous one; filled from each agent's latest ``feedback`` row (the
  ``feedback`` table itself is kept as it is).
* ``agent_settings``: display name, UI language and a signature per language, per agent.
* ``ticket_states``: the workspace state of each draft's ticket, to restore after a reload.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from alembic import op

from copilot.text.distance import edit_distance

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 500


def _timestamp() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(sa.TIMESTAMP(timezone=True), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    from sqlalchemy.dialects import postgresql

    return sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def _serial() -> sa.Column[int]:
    return sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.Identity(always=False),
        primary_key=True,
    )


def upgrade() -> None:
    """Add the columns and tables, then fill them from what is stored."""
    for column in ("origin", "agent", "prompt_sha256"):
        op.add_column("drafts", sa.Column(column, sa.Text(), nullable=True))
    op.add_column("sent_replies", sa.Column("edit_distance", sa.Integer(), nullable=True))
    op.create_table(
        "ratings",
        _serial(),
        sa.Column("id", sa.Text(), nullable=False, unique=True),
        sa.Column(
            "draft_id",
            sa.Text(),
            sa.ForeignKey("drafts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("rating", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.CheckConstraint("rating IN ('up', 'down')", name="ratings_rating"),
        sa.UniqueConstraint("draft_id", "agent", name="ratings_draft_agent"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "agent_settings",
        sa.Column("agent", sa.Text(), primary_key=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("ui_language", sa.Text(), nullable=True),
        sa.Column("signatures", _json(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
    )
    op.create_table(
        "ticket_states",
        sa.Column(
            "draft_id",
            sa.Text(),
            sa.ForeignKey("drafts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("state", _json(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
    )
    _fill_edit_distances()
    _fill_ratings()


def _fill_edit_distances() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.seq, s.final_text, d.draft FROM sent_replies s "
            "JOIN drafts d ON d.id = s.draft_id ORDER BY s.seq"
        )
    ).fetchall()
    update = sa.text("UPDATE sent_replies SET edit_distance = :distance WHERE seq = :seq")
    for start in range(0, len(rows), _BATCH):
        bind.execute(
            update,
            [
                {"seq": seq, "distance": edit_distance(str(draft).strip(), str(final).strip())}
                for seq, final, draft in rows[start : start + _BATCH]
            ],
        )


def _fill_ratings() -> None:
    """Each agent's latest feedback on a draft becomes that agent's rating of it."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT draft_id, COALESCE(agent, ''), rating, note, created_at "
            "FROM feedback ORDER BY seq"
        )
    ).fetchall()
    latest: dict[tuple[str, str], tuple[str, str | None, object, object]] = {}
    for draft_id, agent, rating, note, created_at in rows:
        first = latest.get((draft_id, agent), (rating, note, created_at, created_at))[2]
        latest[(draft_id, agent)] = (rating, note, first, created_at)
    insert = sa.text(
        "INSERT INTO ratings (id, draft_id, agent, rating, reason, created_at, updated_at) "
        "VALUES (:id, :draft_id, :agent, :rating, :reason, :created_at, :updated_at)"
    )
    values = [
        {
            "id": uuid.uuid4().hex,
            "draft_id": draft_id,
            "agent": agent,
            "rating": rating,
            "reason": note,
            "created_at": created_at,
            "updated_at": updated_at,
        }
        for (draft_id, agent), (rating, note, created_at, updated_at) in latest.items()
    ]
    for start in range(0, len(values), _BATCH):
        bind.execute(insert, values[start : start + _BATCH])


def downgrade() -> None:
    """Back to 0001: the workspace tables and columns are dropped (feedback is untouched)."""
    for table in ("ticket_states", "agent_settings", "ratings"):
        op.drop_table(table)
    op.execute("ALTER TABLE sent_replies DROP COLUMN edit_distance")
    for column in ("prompt_sha256", "agent", "origin"):
        op.execute(f"ALTER TABLE drafts DROP COLUMN {column}")
