"""BTHome advertisements built on the host with the firmware's own encoder
(firmware/anju/bthome.py), for injected and forged test traffic."""
from simulator import loader


def door_advertisement(address, bind_key, counter, is_open, case_open, percent, millivolts):
    bthome = loader.core("anju.bthome")
    mac = bytes.fromhex(address.replace(":", ""))
    return bthome.advertisement(mac, bind_key, counter,
                                bthome.door_sensor_objects(is_open, case_open, percent, millivolts))
