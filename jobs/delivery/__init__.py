"""Delivering finished runs to their webhooks (``on_success``, ``on_failure``).

destinations.py  the run hook that queues one outbox entry per URL, inside the run's final write
outbox.py        the durable outbox in Redis and the Deliverer thread that sends from it
webhooks.py      one signed delivery attempt (Standard Webhooks), the SSRF guard, the retry schedule
"""
