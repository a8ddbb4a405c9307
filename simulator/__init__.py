"""anju simulator: MicroPython HAL shims, virtual clock and radio, scenario runner."""
