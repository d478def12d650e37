"""The domain: what a job is, how messages move it, and how long things take. Pure: no I/O,
the clock passed in.

Owns: job states and their legal moves (`job`), the errors callers handle (`errors`), one
builder per message (`messages`), wire timestamps (`times`), estimates (`eta`), replay
compaction (`compaction`) and the marshmallow schemas of everything on the wire (`schemas`).
May import: the standard library, marshmallow, and `realtime.codec`; nothing else of realtime.
"""
