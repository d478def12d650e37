"""The store: the durable truth. Jobs, each user's gap-free message stream, the queue.

Owns: the tables and their migrations (`tables`, `migrate`), engines (`engine`), the one write
path (`writes`) and how it is run (`group_commit` for publishes, `hops` for one-hop
transactions, `checkpoint` for SQLite's WAL), the stream (`stream`), the queue's read side
(`queue`), the front door the service uses (`ledger`) and workers' claims (`claims`).
May import: `realtime.domain`, `realtime.codec`, SQLAlchemy and alembic. Never fan-out or web.
"""
