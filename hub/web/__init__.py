"""The hub's HTTP side: the JSON API (`http`) and Prometheus metrics
(`metrics`).

Routes are thin: they parse and check a request, call the stage that owns
the change (alarm commands, registry, face access) and render the result.
They never hold state of their own and never answer with a key or a secret.
"""
