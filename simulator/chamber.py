"""A physical model of a photoelectric smoke chamber, for the simulator.

The photodiode sees: a dark offset (amplifier offset, ambient light leak),
plus, while the IR LED is on, the light the chamber walls scatter in clean
air, plus what dust deposited on the walls scatters, plus what smoke
particles scatter. The LED's output falls as it ages. ADC noise is Gaussian
and seeded, so every run is repeatable.

Smoke is given as profiles over time, in "net counts": the signal a given
smoke density adds at nominal LED output (on a real detector 3200 counts is
about 3 %/ft obscuration, the normal sensitivity threshold). Profiles:

  smouldering  slow exponential rise (UL 217 smouldering smoke test shape)
  flaming      fast rise to a high density (fast-flaming test shape)
  steam        a short puff: rise, plateau of `duration`, fall
  cooking      moderate rise and fall (nuisance source)

It never reads the firmware's state; it only answers "what does the ADC read
at time t with the LED on or off".

The same module runs in the simulated board (MicroPython; simulator/device.py
compiles it with the port modules): the host hands a smoke sensor its
chamber's state with the world (`state`), the board reads it without a round
trip and hands back where the noise sequence got to (`noise_state`). So it
uses only what MicroPython has: `math`, and its own seeded noise generator.
"""
import math

PROFILES = ("smouldering", "flaming", "steam", "cooking")
DEFAULTS = {
    "smouldering": {"peak": 8000, "tau": 300.0, "duration": 1800.0, "fall": 120.0},
    "flaming": {"peak": 16000, "tau": 20.0, "duration": 600.0, "fall": 60.0},
    "steam": {"peak": 6000, "tau": 0.3, "duration": 1.5, "fall": 0.3},
    "cooking": {"peak": 2200, "tau": 60.0, "duration": 300.0, "fall": 60.0},
}
YEAR_S = 365 * 86400.0


class SmokeEvent:
    def __init__(self, profile, start, **params):
        if profile not in PROFILES:
            raise ValueError("unknown smoke profile '%s'; known: %s" % (profile, ", ".join(PROFILES)))
        p = dict(DEFAULTS[profile])
        for k, v in params.items():
            if k not in p:
                raise ValueError("profile '%s' has no parameter '%s'; known: %s"
                                 % (profile, k, ", ".join(sorted(p))))
            p[k] = float(v)
        self.profile = profile
        self.start = float(start)
        self.p = p

    def density(self, t):
        """Net counts at nominal LED output, t in absolute seconds."""
        dt = t - self.start
        p = self.p
        if dt < 0:
            return 0.0
        rise = p["peak"] * (1.0 - math.exp(-dt / p["tau"]))
        if dt <= p["duration"]:
            return rise
        at_end = p["peak"] * (1.0 - math.exp(-p["duration"] / p["tau"]))
        return at_end * math.exp(-(dt - p["duration"]) / p["fall"])

    def crossing(self, level, step=0.01):
        """First absolute time the density reaches `level` (None if never)."""
        p = self.p
        if p["peak"] * (1.0 - math.exp(-p["duration"] / p["tau"])) < level:
            return None
        # invert the rise analytically
        return self.start - p["tau"] * math.log(1.0 - level / p["peak"])


class Noise:
    """Seeded standard-normal draws (xorshift32, Box-Muller): the same sequence
    on CPython and MicroPython, its state a small list."""

    def __init__(self, seed):
        self.x = (int(seed) * 2654435761 + 1) & 0xFFFFFFFF or 1
        self.spare = None

    def _uniform(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return (x + 0.5) / 4294967296.0  # in (0, 1)

    def gauss(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        r = math.sqrt(-2.0 * math.log(self._uniform()))
        a = 2.0 * math.pi * self._uniform()
        self.spare = r * math.sin(a)
        return r * math.cos(a)

    def state(self):
        return [self.x, self.spare]

    def restore(self, state):
        self.x, self.spare = state[0], state[1]


class Chamber:
    def __init__(self, seed=1, dark=1800, clean=4200, noise_sd=25.0, led_aging_per_year=0.02,
                 born=0.0):
        self.noise = Noise(seed)
        self.dark = dark
        self.clean = clean
        self.noise_sd = noise_sd
        self.aging = led_aging_per_year
        self.born = born
        self.events = []
        self.dust_rate = 0.0   # counts per second of deposit
        self.dust_since = None
        self.dust_base = 0.0
        self.fault = None      # "led_dead" | "saturated" | None

    def add_smoke(self, profile, start, **params):
        ev = SmokeEvent(profile, start, **params)
        self.events.append(ev)
        return ev

    def set_dust(self, t, rate_per_s):
        self.dust_base = self.dust(t)
        self.dust_since = t
        self.dust_rate = float(rate_per_s)

    def dust(self, t):
        if self.dust_since is None:
            return self.dust_base
        return self.dust_base + self.dust_rate * max(0.0, t - self.dust_since)

    def smoke(self, t):
        return sum(ev.density(t) for ev in self.events)

    def led_output(self, t):
        return max(0.0, 1.0 - self.aging * (t - self.born) / YEAR_S)

    def read(self, t, led_on):
        """Raw ADC (u16) at time t."""
        v = self.dark + self.noise.gauss() * self.noise_sd
        if led_on and self.fault != "led_dead":
            v += self.led_output(t) * (self.clean + self.dust(t) + self.smoke(t))
        if self.fault == "saturated":
            v = 65535
        return max(0, min(65535, int(round(v))))

    # ---- handed to the board with the world, and back ----------------------------
    def state(self):
        return [self.dark, self.clean, self.noise_sd, self.aging, self.born,
                [[ev.profile, ev.start, ev.p] for ev in self.events],
                self.dust_rate, self.dust_since, self.dust_base, self.fault, self.noise.state()]

    @classmethod
    def restore(cls, state):
        (dark, clean, noise_sd, aging, born, events, dust_rate, dust_since, dust_base, fault,
         noise) = state
        c = cls(dark=dark, clean=clean, noise_sd=noise_sd, led_aging_per_year=aging, born=born)
        for profile, start, p in events:
            c.events.append(SmokeEvent(profile, start, **p))
        c.dust_rate, c.dust_since, c.dust_base, c.fault = dust_rate, dust_since, dust_base, fault
        c.noise.restore(noise)
        return c

    def noise_state(self):
        return self.noise.state()

    def adc_source(self, led_pin):
        """A callable for SimDevice.adc_source: reads the LED pin of the device."""
        def source(dev):
            return self.read(dev.now(), dev.pin(led_pin).level == 1)
        return source
