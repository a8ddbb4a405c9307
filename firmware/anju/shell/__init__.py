"""Device shell: the only firmware code that touches `machine`, `bluetooth`,
`network`, `esp32` and `umqtt`. It turns pins, timers and radios into core
events and carries out core actions. In the simulator the same code runs
against shims of those modules.
"""
