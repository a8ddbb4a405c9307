"""Optional hub components, built from the site configuration.

A component is an object with `async start()` and `async stop()` (and
optionally `idle()` for the simulator's settle check). `build(hub)` returns the
ones this site needs; HubService starts them after its core tasks and stops
them before. Each component lives in its own module and is imported only when
it is enabled, so a hub without it pays nothing.
"""


def build(hub):
    components = []
    return components
