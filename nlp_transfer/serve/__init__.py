"""`nlp-transfer serve`: trained models behind an HTTP API (FastAPI on uvicorn).

models (what is served and how a request's inputs become a predictor's items), batching (requests queued and run
together on a worker thread), limits (body size, texts, characters, time), keys (API keys), metrics (Prometheus),
errors (one-sentence 4xx bodies, logged 500s with an id), app (the routes), lifecycle (bind, start, drain, stop).
Predictions come from use.predict's predictors: the same code path as `nlp-transfer predict`.
"""
