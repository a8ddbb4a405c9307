"""Battery charge from the measured voltage, linear between the cell's empty and
full voltages (`cfg.empty_mv`, `cfg.full_mv`). Pure; shared by every app."""


def percent(mv, cfg):
    if mv <= cfg.empty_mv:
        return 0
    if mv >= cfg.full_mv:
        return 100
    return (mv - cfg.empty_mv) * 100 // (cfg.full_mv - cfg.empty_mv)
