"""Safety rules: pure functions over stored state and the current time.

A rule never sleeps: it says when it next needs to look (a deadline), and the
service waits on the injected clock until then, so timers are rebuilt from the
store after every restart.
"""
