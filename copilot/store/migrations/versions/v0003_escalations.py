"""Escalations: the internal hand-over notes agents wrote with the workspace's Escalate button.

* ``escalations``: one row per escalation of a draft (who, when, the masked hand-over note).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine[Any]:
    return sa.Text().with_variant(sa.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    """Add the escalations table."""
    op.create_table(
        "escalations",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            primary_key=True,
        ),
        sa.Column("id", sa.Text(), nullable=False, unique=True),
        sa.Column(
            "draft_id",
            sa.Text(),
            sa.ForeignKey("drafts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("escalations_draft_id", "escalations", ["draft_id"])


def downgrade() -> None:
    """Back to 0002: the escalations are dropped."""
    op.drop_index("escalations_draft_id", table_name="escalations")
    op.drop_table("escalations")
