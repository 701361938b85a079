"""The journal: plans, their actions, the event history and controller metadata.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("tick", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
        sa.Column("source", sa.String(200), nullable=False, default=""),
        sa.Column("limits", sa.Text, nullable=False, default="{}"),
        sa.Column("controller", sa.String(200), nullable=False, default=""),
        sa.Column("finished_at", sa.Float),
        sa.Column("summary", sa.Text),
    )
    op.create_index("ix_plans_status", "plans", ["status"])
    op.create_table(
        "actions",
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("plans.id"), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("deps", sa.Text, nullable=False, default="[]"),
        sa.Column("hosts", sa.Text, nullable=False, default="[]"),
        sa.Column("link", sa.Text),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("plan_id", sa.Integer),
        sa.Column("idx", sa.Integer),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("t", sa.Float),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_events_plan", "events", ["plan_id", "idx"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_index("ix_events_plan", "events")
    op.drop_table("events")
    op.drop_table("actions")
    op.drop_index("ix_plans_status", "plans")
    op.drop_table("plans")
