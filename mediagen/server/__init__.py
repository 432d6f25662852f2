"""`mediagen serve`: an HTTP API, OpenAI-compatible image endpoints and a web UI over a durable job queue.

The HTTP process stays light (no torch): it validates requests, stores jobs in SQLite and streams their
state; a supervised worker process loads models and generates. See `app.create_app`.
"""
