"""The console's message catalogues and files (hub/console, docs/console.md):
both catalogues have the same keys, the pages use only keys that exist, the
hub's own codes (states, types, severities, actions, roles, errors) all have
texts, no visible text is written into the page itself, and no request can
name a file outside static/."""
import json
import re
from html.parser import HTMLParser

import pytest

from hub.alarms import commands, lifecycle
from hub.auth import roles
from hub.config import plan as site_plan
from hub.config import site as site_config
from hub.console import files
from hub.face import gallery as face_gallery
from hub.verify import frames, frames_lock, frames_smoke  # noqa: F401 (registers the types)
from hub.visitors import fields as visit_fields
from hub.visitors import model as visit_model

STATIC = files.STATIC
LANGS = ("zh-CN", "en")
# every alarm type the hub raises (docs/rules.md; face access: watchlist_face)
ALARM_TYPES = ("inactivity", "door_left_open", "offline", "low_battery", "tamper", "clock_skew",
               "possible_attack", "unregistered_occupant", "forced_entry", "smoke",
               "watchlist_face", "visitor_watchlist", "visitor_overstay")


def catalogue(lang):
    return json.loads((STATIC / "i18n" / ("%s.json" % lang)).read_text(encoding="utf-8"))


def scripts():
    """{file name: its source without // comments} of the console's scripts."""
    return {p.name: re.sub(r"//.*", "", p.read_text(encoding="utf-8"))
            for p in (STATIC / "js").glob("*.js")}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.keys, self.texts, self._skip = set(), [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name.startswith("data-i18n"):
                self.keys.add(value)
            if name in ("placeholder", "title", "aria-label", "alt"):
                self.texts.append("%s=%s" % (name, value))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def page():
    parser = _Page()
    parser.feed((STATIC / files.INDEX).read_text(encoding="utf-8"))
    return parser


def test_both_catalogues_have_the_same_keys_and_no_empty_text():
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert sorted(set(zh) ^ set(en)) == []
    for lang, texts in (("zh-CN", zh), ("en", en)):
        assert [k for k, v in texts.items() if not isinstance(v, str) or not v.strip()] == [], lang
        # the same placeholders in both languages
    for key in zh:
        assert sorted(re.findall(r"\{(\w+)\}", zh[key])) == sorted(
            re.findall(r"\{(\w+)\}", en[key])), key


def test_the_page_and_the_scripts_use_only_keys_that_exist():
    keys = set(catalogue("zh-CN"))
    used = set(page().keys)
    for name, source in scripts().items():
        used |= set(re.findall(r"""\bt\(\s*["']([^"']+)["']""", source))
        # endSession(key) shows its key with t(message): its callers name it literally
        used |= set(re.findall(r"""\bendSession\(\s*["']([^"']+)["']""", source))
        source = source.replace("t(message)", "")
        # every t( call names its key literally, so this check sees all of them
        # (i18n.js, which defines t, passes the keys it reads from the page)
        if name != "i18n.js":
            assert not re.findall(r"""\bt\(\s*[^"'\s)]""", source), name
    assert sorted(used - keys) == []
    assert len(used) > 50


def test_every_code_of_the_hub_has_a_text():
    keys = set(catalogue("en"))
    wanted = (["state." + s for s in lifecycle.STATES]
              + ["severity." + s for s in lifecycle.SEVERITIES]
              + ["action." + a for a in commands.ACTIONS]
              + ["role." + r for r in roles.ROLES]
              + ["type." + t for t in ALARM_TYPES]
              + ["lang." + lang for lang in LANGS]
              # the plan: responders' kinds and devices' states (hub/console/plan.py)
              + ["responder." + k for k in site_plan.RESPONDER_KINDS]
              + ["plan.device.status." + s for s in ("online", "offline", "unknown")]
              # the registry pages: every collection, field of the site format, code
              + ["reg.kind." + k for k in roles.REGISTRY_KINDS]
              + ["reg.one." + k for k in roles.REGISTRY_KINDS]
              + ["reg.role." + r for r in site_config.ROLES]
              + ["reg.device_kind." + k for k in site_config.DEVICE_KINDS]
              + ["reg.transport." + k for k in site_config.TRANSPORTS]
              # a device's frames, the smart locks' and the face entrances' access events
              + ["device.event." + k for k in frames.TYPES.values()]
              + ["access.method." + m for m in frames_lock.METHODS.values()]
              + ["access.reason." + r for r in frames_lock.REASONS.values() if r != "ok"]
              + ["access.reason." + r for r in frames_lock.FORCED_CAUSES.values()]
              + ["access.reason." + r for r in ("not_enrolled", "entrance_not_allowed",
                                                "outside_schedule", "liveness_no_motion",
                                                "liveness_antispoof")]
              # the face pipeline's enrolment refusals (hub/face/pipeline.py, quality.py)
              + ["face.reason." + r for r in ("no_face", "multiple_faces", "face_too_small",
                                              "blurry", "pose_roll", "pose_yaw", "pose_pitch",
                                              "low_detection_score", "bad_image")]
              + ["face.list." + k for k in face_gallery.LISTS]
              # the visitors page: every state and clerk action of a visit, each kind
              # of watch-list hit, every history step the hub writes, every field
              # of a registration the hub may name in a refusal
              + ["vis.state." + s for s in visit_model.STATES]
              + ["vis.action." + a for a in visit_model.CLERK_ACTIONS]
              + ["vis.watch." + k for k in ("id", "plate", "face")]
              + ["vis.history." + a for a in ("registered", "flagged", "approved", "refused",
                                              "revoked", "expired", "personal_data_read",
                                              "no_code", "purged", "overstay")]
              + ["vis.field." + f for f in visit_fields.REGISTRATION_KEYS if f != "photo"])
    assert sorted(set(wanted) - keys) == []


def test_the_visitors_page_knows_every_state_and_action_of_the_hub():
    """js/visitors.js's own lists (the state filter, which action applies to which
    state) are the hub's (hub/visitors/model.py), so no state is left out of the
    filter and no button is offered that the hub would refuse for the state."""
    source = scripts()["visitors.js"]
    states = re.search(r"const STATES = \[(.*?)\];", source).group(1)
    assert sorted(re.findall(r'"([a-z_]+)"', states)) == sorted(visit_model.STATES)
    block = re.search(r"const ACTIONS = \{(.*?)\};", source, re.S).group(1)
    actions = {name: sorted(re.findall(r'"([a-z_]+)"', allowed))
               for name, allowed in re.findall(r"(\w+): \[([^\]]*)\]", block)}
    assert actions == {a: sorted(visit_model.ACTIONS[a][0]) for a in visit_model.CLERK_ACTIONS}


def test_every_field_the_registry_pages_show_has_a_label():
    """The forms' and lists' fields (js/registry.js) are the site format's
    (hub/config/site.py KEYS) or the list's own columns; each has a label."""
    source = scripts()["registry.js"]
    fields = set(re.findall(r'\["([a-z_]+)", "(?:text|parent|number|tel|select|check|date|secret)"',
                            source))
    for block in re.findall(r"const COLUMNS = \{(.*?)\n\};", source, re.S):
        fields |= set(re.findall(r'"([a-z_]+)"', block))
    assert {"from", "until", "lives_alone", "role", "frame_key", "last_seen"} <= fields
    site_fields = set().union(*(site_config.KEYS[k] for k in ("building", "flat", "resident",
                                                              "device")))
    own = {"status", "battery", "last_seen", "firmware", "keys", "building", "flat"}
    assert sorted(fields - site_fields - own) == []
    assert sorted("reg.field." + f for f in fields if "reg.field." + f not in catalogue("en")) == []


def test_no_visible_text_is_written_into_the_page_or_the_scripts():
    assert page().texts == []
    for name, source in scripts().items():
        # no Chinese (or other non-ASCII) text outside the catalogues
        assert not re.findall(r"[^\x00-\x7f]", source), name
        assert not re.findall(r'textContent = "[^"]', source), name
        assert "innerHTML" not in source, name


def test_no_script_writes_to_the_browsers_console():
    # what the pages handle (a resident token, a visitor's ID number) must not
    # end up in the browser's console, where extensions and saved logs read it
    for name, source in scripts().items():
        assert not re.findall(r"\bconsole\.\w+\(", source), name


def test_chinese_is_the_default():
    assert 'lang="zh-CN"' in (STATIC / files.INDEX).read_text(encoding="utf-8")
    assert 'export const LANGS = ["zh-CN", "en"]' in scripts()["i18n.js"]


@pytest.mark.parametrize("name", [
    "../service.py", "..%2fservice.py", "js/../../files.py", ".hidden.js", "/etc/passwd",
    "i18n/zh-CN.json/", "console.py", "js/app.js\x00.css", "", "a" * 300 + ".js",
])
def test_no_file_outside_static_is_served(name):
    assert files.resolve(name) is None


def test_the_console_files_are_found():
    for name in ("console.css", "js/app.js", "i18n/zh-CN.json", "i18n/en.json"):
        assert files.resolve(name) == (STATIC / name).resolve()
