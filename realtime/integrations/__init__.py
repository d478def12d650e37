"""Integrations with task queues: their retry schedule becomes the job's true `retryAt`.

`celery.connect(tracker)` hooks Celery's retry and failure signals; `rq.report_failure` is
the body of an RQ `on_failure` callback. Each needs the framework installed; neither is
imported by `realtime` itself.
May import: `realtime.sync`, `realtime.domain`.
"""
