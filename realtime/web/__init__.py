"""The web process: what a node serves over HTTP and Socket.IO.

Owns: the app factory (`app.create_app`, the one place the parts are built and wired), its
typed keys (`keys`), the HTTP handlers (`api`) and their middlewares (`middleware`), the
Socket.IO gateway (`gateway`), access tokens (`auth`) and the GC pacer a serving process runs
(`gcpacer`).
May import everything below it: workers, tracker, delivery, broadcast, store, domain.
Nothing imports it but the command line.
"""
