"""The stream processing: two agents, thin, deciding through :mod:`app.domain`.

- :mod:`app.streams.agents`: the agents and what they do with one record;
- :mod:`app.streams.batches`: records in batches, one wait for Kafka per batch;
- :mod:`app.streams.placement`: the hop to the user's canonical partition;
- :mod:`app.streams.tokens`, :mod:`app.streams.payments`: the handlers;
- :mod:`app.streams.retention`: sweeps of expired state;
- :mod:`app.streams.partition`: per-partition clock and sweep cursor;
- :mod:`app.streams.context`: the tables and rules a handler takes;
- :mod:`app.streams.deadletters`: records no parser accepts, kept once.
"""
