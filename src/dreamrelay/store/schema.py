"""Every table on one MetaData; Alembic's target. Times are UNIX seconds (float) in UTC."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("created_at", Double, nullable=False),
    Column("callback_secret", Text),  # Standard Webhooks secret (whsec_…); made on first need
    Column("previous_callback_secret", Text),  # still signed with until previous_secret_until
    Column("previous_secret_until", Double),
    Column("max_keys", Integer),  # keys the customer may hold (set by the operator); null = the server's
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex; the key itself is never kept
    Column("prefix", String(16), nullable=False),  # first characters, to tell keys apart in listings
    Column("name", String(100), nullable=False, server_default=""),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double),
    Column("expires_at", Double),
    Column("spend_cap", BigInteger),  # credits this key may spend in all; null = no cap
    Column("spent", BigInteger, nullable=False, server_default="0"),  # held + captured, net of releases
    Column("allowed_models", JSON),  # null = every model
    Column("rpm", Integer),  # requests per minute; null = the server default
    Column("max_in_flight", Integer),  # tasks pending/processing at once
    # Its tasks pending or processing now (store/in_flight.py): +1 with the hold, -1 as one finishes.
    Column("in_flight", BigInteger, nullable=False, server_default="0"),
    Column("batch_rpm", Integer),  # batch queries per minute
    Column("batch_envelope", String(8), nullable=False, server_default="bare"),  # bare | newapi
    # The key that created it (a customer's key); null = issued by the operator. Deleting a key deletes
    # its descendants; a key works only while every key above it works (store/accounts.py).
    Column("parent_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), index=True),
    # The operator's disable, apart from the customer's `disabled`: only the operator lifts it.
    Column("disabled_by_operator", Boolean, nullable=False, server_default="0"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # sandbox | luma | relay | kling
    Column("base_url", Text, nullable=False, server_default=""),
    Column("secret_key", Text, nullable=False, server_default=""),
    Column("models", JSON),  # list of own-format model names; null = every model
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("weight", Integer, nullable=False, server_default="1"),
    Column("concurrency", Integer, nullable=False, server_default="16"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", Double, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),  # in a row; reset by a success
    Column("retry_at", Double),  # benched until then after too many failures in a row
    Column("last_error", Text),
    # CIDRs this channel's media may come from although private (URL safety); "" = public only.
    Column("media_networks", Text, nullable=False, server_default=""),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),  # public id (uuid4)
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("api_key_id", Integer, ForeignKey("api_keys.id", ondelete="SET NULL")),
    Column("channel_id", Integer, ForeignKey("channels.id", ondelete="SET NULL")),
    Column("action", String(16), nullable=False),  # generate | extend | image
    Column("parent_id", String(36)),
    Column("model", String(64), nullable=False),
    Column("api_format", String(16), nullable=False, server_default="luma"),  # format it was created in
    Column("request", JSON, nullable=False),  # normalised request (image URLs point at our storage)
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),  # +1 on every change
    Column("upstream_id", String(128)),
    Column("upstream_state", String(32)),
    Column("failure_reason", Text),
    Column("callback_url", Text),
    Column("media", JSON),  # probed facts of our copies, once completed
    Column("body", LargeBinary, nullable=False),  # the own-format task object, pre-encoded
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("finished_at", Double),
    Column("deadline_at", Double, nullable=False),
    Column("next_poll_at", Double),  # null once terminal
    Column("poll_count", Integer, nullable=False, server_default="0"),
    Column("poll_errors", Integer, nullable=False, server_default="0"),
    Column("lease_owner", String(64)),
    Column("lease_until", Double),
    Column("price", BigInteger, nullable=False, server_default="0"),  # credits held at submit
    Column("upstream_token", String(64)),  # secret in the callback URL we give upstream
    Column("deleted_at", Double),  # deleted by the customer: hidden from their reads from then on
    Column("failure_code", String(64)),  # Agents API failure_code (content_moderated, …), Ark's error code
    # Raised past every other row's by each write that can change what a read shows (store/tasks.py):
    # the change feed of the in-flight mirrors (inflight.py).
    Column("change_seq", BigInteger, nullable=False, server_default="0"),
    # Billing by use (migration 0015): the rate a token-priced task was held at (credits per million
    # tokens), the tokens upstream said it used, and the credits its completion captured.
    Column("token_rate", BigInteger),
    Column("usage_tokens", BigInteger),
    Column("charged", BigInteger),
    Index("ix_tasks_account_created", "account_id", "created_at"),
    Index("ix_tasks_change_seq", "change_seq"),
    Index("ix_tasks_key_state", "api_key_id", "state"),
    Index("ix_tasks_due", "next_poll_at"),
    Index("ix_tasks_channel_upstream", "channel_id", "upstream_id"),
    Index("ix_tasks_state_channel", "state", "channel_id"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("task_id", String(36)),
    Column("kind", String(16), nullable=False),  # one of store/ledger.py::KINDS
    Column("amount", BigInteger, nullable=False),  # signed change of the balance
    # capture and release both settle a hold: at most one settlement per task, whichever kind.
    Column("settles", String(36), unique=True),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("task_id", "kind", name="uq_ledger_task_kind"),
)

prices = Table(
    "prices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("resolution", String(16), nullable=False, server_default="*"),
    Column("duration", String(16), nullable=False, server_default="*"),
    Column("action", String(16), nullable=False, server_default="*"),
    Column("credits", BigInteger, nullable=False),
    Column("unit", String(16), nullable=False, server_default="task"),  # task | 1m_tokens (0015)
    UniqueConstraint("model", "resolution", "duration", "action", name="uq_prices_rule"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("task_id", String(36), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("account_id", "key", name="uq_idempotency_account_key"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(80), nullable=False, unique=True),  # webhook-id; kept on replays
    Column("task_id", String(36), nullable=False, index=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("sequence", Integer, nullable=False),  # 1, 2, 3… per task, in state-change order
    Column("state", String(16), nullable=False),  # the task's state this event reports
    Column("url", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the task object as its GET returned it then
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Double),
    Column("lease_owner", String(64)),
    Column("lease_until", Double),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", Double, nullable=False),
    Column("delivered_at", Double),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    UniqueConstraint("task_id", "sequence", name="uq_outbox_task_sequence"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column(
        "event_id",
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("outbox.id"),
        nullable=False,
        index=True,
    ),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer),  # null when no HTTP answer came
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text),
    Column("created_at", Double, nullable=False),
)

checks = Table(
    "checks",
    metadata,
    Column("name", String(32), primary_key=True),  # e.g. "ledger"
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("checked_at", Double, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("instance", String(64), primary_key=True),  # Runtime.instance of a process that follows tasks
    Column("host", String(255), nullable=False, server_default=""),
    Column("pid", Integer, nullable=False, server_default="0"),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
)

credit_codes = Table(
    "credit_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code_hash", String(64), nullable=False, unique=True),  # SHA-256 hex; never the code itself
    Column("prefix", String(16), nullable=False),  # first characters, to tell codes apart in listings
    Column("batch", String(32), nullable=False, index=True),  # codes made together share it
    Column("amount", BigInteger, nullable=False),  # credits the code adds
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),  # null = never
    Column("redeemed_at", Double),  # null until used; set exactly once
    Column("redeemed_by", Integer, ForeignKey("accounts.id", ondelete="SET NULL")),
    Column("redeemed_key_id", Integer),  # the key that redeemed it (kept if the key is deleted later)
    CheckConstraint("amount > 0", name="ck_credit_codes_amount_positive"),
)

agent_files = Table(
    "agent_files",
    metadata,
    Column("id", String(36), primary_key=True),  # public file id (uuid4), ImageRef.file_id
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("purpose", String(16), nullable=False),  # input | reference
    Column("state", String(16), nullable=False),  # pending | ready | failed | deleted
    Column("mime_type", String(100), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),  # declared (presigned) or received (inline)
    Column("filename", String(255)),
    Column("user_id", String(255)),  # the customer's opaque end-user tag, echoed back
    Column("storage_key", Text),  # where our media store keeps the bytes, once received
    Column("upload_token", String(64)),  # secret of the presigned PUT URL; null once used
    Column("upload_expires_at", Double),
    Column("failure_reason", Text),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),  # customer-given TTL
    Column("deleted_at", Double),
    Index("ix_agent_files_account_created", "account_id", "created_at", "id"),
)

console_signouts = Table(
    "console_signouts",
    metadata,
    Column("sid", String(64), primary_key=True),  # a signed-out console session's id
    Column("expires_at", Double, nullable=False, index=True),  # when its cookie would have expired
)
