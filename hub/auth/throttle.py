"""Login rate limiting: pure functions over a state dict, on the injected clock.

A failure is counted under two keys: the account name and the client's
address. When a key has `limit` failures within `window_s`, further
attempts under it are refused (429, `Retry-After`) until the oldest of those
failures is `window_s` old. A success clears the account's key only (an
address guessing several accounts stays limited). Unknown account names
count like known ones, so the answer does not tell which names exist.

The state lives in the server's memory: a restart of the hub forgets it, which
costs a guesser a restart of the hub per window.
"""

LIMITS = {"account": (5, 900.0), "address": (20, 900.0)}  # kind -> (failures, window s)


def keys(account, address):
    return [("account", (account or "").lower()), ("address", address or "?")]


def _recent(state, key, now):
    window = LIMITS[key[0]][1]
    times = [t for t in state.get(key, ()) if now - t < window]
    if times:
        state[key] = times
    else:
        state.pop(key, None)
    return times


def retry_after(state, account, address, now):
    """Seconds until an attempt may be made (0 = now)."""
    wait = 0.0
    for key in keys(account, address):
        limit, window = LIMITS[key[0]]
        times = _recent(state, key, now)
        if len(times) >= limit:
            wait = max(wait, times[-limit] + window - now)
    return wait


def failed(state, account, address, now):
    for key in keys(account, address):
        times = _recent(state, key, now)
        times.append(now)
        state[key] = times[-LIMITS[key[0]][0]:]


def succeeded(state, account):
    state.pop(("account", (account or "").lower()), None)
