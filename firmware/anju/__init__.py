"""anju device runtime.

The modules directly in this package are the portable core: codecs, crypto,
the persistent queue format, counters and the device state machines. They are
pure (no `machine`, `bluetooth`, `network`, `esp32` imports) and run unchanged
under MicroPython on the device and under CPython in tests. Everything that
touches hardware lives in `anju.shell`.
"""
