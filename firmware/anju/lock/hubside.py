"""Hub -> lock command bodies and phone-key wrapping as the hub builds them.

For tests, the shared vectors and the simulator; the lock itself never
imports this module (it only decodes, in `anju.lock.wire`), which keeps
these encoders out of the device's heap. The layouts are docs/smart_lock.md
"Commands"; the encoders do not range-check (tests build bad bodies with them).
"""
import struct

from anju import aes
from anju.lock.wire import DATA_LEN, DAY_MIN, id_field


def lock_ctl_body(valid_s, action, method, who=b""):
    return struct.pack(">HBB", valid_s, action, method) + id_field(who)


def user_set_body(valid_s, user, utype, days=0, start_min=0, end_min=DAY_MIN, frm=0, until=0,
                  expire_min=0):
    return struct.pack(">HHBBHHIIH", valid_s, user, utype, days, start_min, end_min, frm, until,
                       expire_min)


def user_remove_body(valid_s, user):
    return struct.pack(">HH", valid_s, user)


def cred_set_body(valid_s, user, kind, cid, data):
    if len(data) != DATA_LEN:
        raise ValueError("credential data must be 16 bytes")
    return struct.pack(">HHB", valid_s, user, kind) + id_field(cid) + bytes(data)


def cred_remove_body(valid_s, cid):
    return struct.pack(">H", valid_s) + id_field(cid)


def set_time_body(utc_offset_min, answers=1):
    return struct.pack(">hI", utc_offset_min, answers)


def settings_body(valid_s, relock_s, wrong_limit, lockout_s, ajar_s):
    return struct.pack(">HHBHHB", valid_s, relock_s, wrong_limit, lockout_s, ajar_s, 0)


def wrap_phone_key(wkey, key):
    """AES-128-ECB of one 16-byte phone key with the wrap key (wire.unwrap_phone_key undoes it)."""
    return bytes(aes.AES128(wkey).encrypt_block(key))


def visitor_revoke_body(valid_s, start_slot, duration_index, one_time, check):
    return struct.pack(">HIBBH", valid_s, start_slot, duration_index, one_time, check)


def visitor_code(vkey, start_slot, duration_index, one_time):
    """The ten digits of a visitor code, as hub/visitors/passcode.py makes them
    (docs/visitors.md); `vkey` is anju.lock.visitor.visit_key(frame_key)."""
    from anju.lock import visitor
    payload = start_slot % visitor.START_MOD + visitor.START_MOD * (
        duration_index + visitor.N_DURATIONS * (1 if one_time else 0))
    check = visitor.check_value(vkey, start_slot, duration_index, one_time)
    return "%010d" % (check * visitor.PAYLOAD_MOD + payload)
