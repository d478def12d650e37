"""Workers: the processes and tasks that move jobs along without a client asking.

Owns: the queue notifier (`notifier`: queue_updates when positions or waits move) and the
demo pipeline (`demo`: simulated work, only where the operator asks for the demo).
May import: `realtime.tracker`, `realtime.broadcast`, `realtime.store`, `realtime.domain`.
Never `realtime.web` or `realtime.delivery`.
"""
