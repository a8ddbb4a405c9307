// The registry pages (docs/console.md, "Registry"): buildings, flats, residents
// and devices of a hub that runs from its registry (docs/registry.md). Lists
// from GET /api/registry/<kind>; add, edit and remove through POST, PUT and
// DELETE of the same API, whose refusal names the offending field ("field"),
// shown next to it. CSV export and import go through GET /api/registry and
// POST /api/registry/import. Buttons appear only for the permissions the
// account holds (hub/auth/roles.py REGISTRY_KINDS); the API refuses the rest.
import * as api from "./api.js";
import * as i18n from "./i18n.js";

const {t, tEnum} = i18n;
const $ = (id) => document.getElementById(id);

// collection -> [read permission, write permission] (hub/auth/roles.py)
const PERMS = {buildings: ["site.read", "site.write"], flats: ["site.read", "site.write"],
               residents: ["residents.read", "residents.write"],
               devices: ["registry_devices.read", "registry_devices.write"]};
const KINDS = Object.keys(PERMS);
const ROLES = ["owner", "tenant", "family", "visitor"];             // hub/config/site.py
const DEVICE_KINDS = ["door_sensor", "smart_lock", "smoke_sensor"];
const TRANSPORTS = ["mqtt", "ble"];

// the form of each collection: [field, input type, choices]; the site file's names
const FORMS = {
  buildings: [["id", "text"], ["name", "text"]],
  flats: [["id", "text"], ["building", "parent"], ["name", "text"], ["floor", "number"],
          ["inactivity", "text"]],
  residents: [["id", "text"], ["flat", "parent"], ["name", "text"], ["phone", "tel"],
              ["role", "select", ROLES], ["lives_alone", "check"], ["elderly", "check"],
              ["from", "date"], ["until", "date"]],
  devices: [["id", "text"], ["kind", "select", DEVICE_KINDS], ["board", "text"],
            ["flat", "parent"], ["entrance", "text"], ["transport", "select", TRANSPORTS],
            ["heartbeat", "text"], ["frame_key", "secret"], ["bind_key", "secret"]],
};
// the parent a "parent" field names
const PARENT = {flats: "buildings", residents: "flats", devices: "flats"};

let ctx = null;                 // {state, may, errorText, formatTime} from app.js
let kind = "residents";
const lists = {};               // kind -> entities of the last GET
let states = new Map();         // device id -> the plan's device (status, battery, last seen)
let firmware = new Map();       // device id -> what it reported it runs (GET /api/devices, hub.ota)
let editing = null;             // null, {add: true} or {id, entity}
let removing = null;            // the id whose removal waits for its confirmation

function html(tag, className, text, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function mayRead(k) { return ctx.may(PERMS[k][0]); }
function mayWrite(k) { return ctx.may(PERMS[k][1]); }

export function init(context) {
  ctx = context;
  for (const k of KINDS) $("reg-tab-" + k).addEventListener("click", () => choose(k));
  $("reg-tabs").addEventListener("keydown", onTabKey);
  $("reg-add").addEventListener("click", () => openEditor({add: true}));
  $("reg-form").addEventListener("submit", onSave);
  $("reg-cancel").addEventListener("click", closeEditor);
  $("reg-editor").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.stopPropagation(); closeEditor(); }
  });
  for (const name of ["residents.csv", "devices.csv"]) {
    $("reg-export-" + name.split(".")[0]).addEventListener("click", () => exportCsv(name));
  }
  $("reg-import-form").addEventListener("submit", importCsv);
}

export function reset() {
  for (const k of KINDS) delete lists[k];
  states = new Map();
  editing = null;
  removing = null;
  $("reg-editor").hidden = true;
  $("reg-list").replaceChildren();
  $("reg-result").textContent = "";
}

// the tabs the account may read; the first one it may read when the chosen one is not
function tabs() {
  const readable = KINDS.filter(mayRead);
  for (const k of KINDS) $("reg-tab-" + k).hidden = !readable.includes(k);
  if (!readable.includes(kind)) kind = readable[0] || "buildings";
  for (const k of KINDS) {
    const tab = $("reg-tab-" + k);
    tab.setAttribute("aria-selected", String(k === kind));
    tab.tabIndex = k === kind ? 0 : -1;
  }
}

function onTabKey(event) {
  if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
  const readable = KINDS.filter(mayRead);
  const step = event.key === "ArrowRight" ? 1 : readable.length - 1;
  const next = readable[(readable.indexOf(kind) + step) % readable.length];
  choose(next);
  $("reg-tab-" + next).focus();
}

function choose(k) {
  kind = k;
  closeEditor();
  $("reg-result").textContent = "";
  load();
}

export async function load() {
  if (ctx.state.me === null) return;
  tabs();
  const tools = ctx.may("registry.export") || ctx.may("registry.import");
  $("reg-csv").hidden = !tools;
  $("reg-export").hidden = !ctx.may("registry.export");
  $("reg-import-form").hidden = !ctx.may("registry.import");
  $("reg-add").hidden = !mayWrite(kind);
  $("reg-add").textContent = t("reg.add", {what: tEnum("reg.one", kind)});
  try {
    const wanted = new Set([kind, PARENT[kind]].filter((k) => k && mayRead(k)));
    for (const k of wanted) lists[k] = (await api.call("GET", "/api/registry/" + k))[k];
    if (kind === "devices") {
      const planDoc = await api.call("GET", "/api/site/plan");
      states = new Map(planDoc.devices.map((d) => [d.id, d]));
      firmware = new Map();
      if (ctx.may("devices.read")) {
        const reported = (await api.call("GET", "/api/devices")).devices;
        for (const d of reported) if (d.firmware) firmware.set(d.device, d.firmware);
      }
    }
    render();
  } catch (err) {
    $("reg-result").textContent = ctx.errorText(err);
  }
}

// ---- the list ----------------------------------------------------------------------------
const COLUMNS = {
  buildings: ["id", "name", "flats"],
  flats: ["id", "building", "name", "floor", "inactivity", "residents"],
  residents: ["id", "name", "flat", "role", "lives_alone", "from", "until", "phone"],
  devices: ["id", "kind", "flat", "transport", "status", "battery", "last_seen", "firmware",
            "keys"],
};

function value(entity, column) {
  const v = entity[column];
  if (column === "flats" || column === "residents") return String((v || []).length);
  if (column === "role") return v ? tEnum("reg.role", v) : "";
  if (column === "kind") return tEnum("reg.device_kind", v);
  if (column === "lives_alone") return v ? t("reg.yes") : "";
  if (column === "flat" && kind === "devices") return v || entity.entrance || "";
  if (column === "keys") return (v || []).join(", ");
  const seen = states.get(entity.id);
  if (column === "status") return seen ? tEnum("plan.device.status", seen.status) : "";
  if (column === "battery") {
    if (!seen || seen.battery_percent === null || seen.battery_percent === undefined) return "";
    return t("reg.battery_value", {percent: seen.battery_percent}) +
      (seen.battery_low ? t("location.separator") + t("reg.battery_low") : "");
  }
  if (column === "firmware") {
    const fw = firmware.get(entity.id);
    if (!fw || !fw.version) return "";
    return fw.trial ? t("reg.firmware_trial", {version: fw.version}) : fw.version;
  }
  if (column === "last_seen") {
    return seen && seen.last_seen ? ctx.formatTime(new Date(seen.last_seen * 1000).toISOString())
      : t("reg.never");
  }
  return v === undefined || v === null ? "" : String(v);
}

export function render() {
  if (ctx === null || ctx.state.me === null || lists[kind] === undefined) return;
  tabs();
  $("reg-add").textContent = t("reg.add", {what: tEnum("reg.one", kind)});
  const head = $("reg-head");
  head.replaceChildren();
  const tr = html("tr", null, undefined, head);
  for (const column of COLUMNS[kind]) {
    const th = html("th", null, tEnum("reg.field", column), tr);
    th.scope = "col";
  }
  const write = mayWrite(kind);
  const details = kind === "devices" && ctx.may("devices.read");
  const actions = write || details;
  if (actions) html("th", null, t("reg.actions"), tr).scope = "col";
  const body = $("reg-list");
  body.replaceChildren();
  for (const entity of lists[kind]) {
    const row = html("tr", null, undefined, body);
    row.dataset.id = entity.id;
    for (const column of COLUMNS[kind]) html("td", "c-" + column, value(entity, column), row);
    if (!actions) continue;
    const cell = html("td", "c-actions", undefined, row);
    if (details) {
      const more = html("button", null, t("reg.details"), cell);
      more.type = "button";
      more.dataset.device = entity.id;
      more.addEventListener("click", () => ctx.openDevice(entity.id, "registry"));
    }
    if (!write) continue;
    const edit = html("button", null, t("reg.edit"), cell);
    edit.type = "button";
    edit.dataset.edit = entity.id;
    edit.addEventListener("click", () => openEditor({id: entity.id, entity}));
    const remove = html("button", "danger",
                        removing === entity.id ? t("reg.remove_confirm") : t("reg.remove"), cell);
    remove.type = "button";
    remove.dataset.remove = entity.id;
    remove.addEventListener("click", () => onRemove(entity.id));
  }
  $("reg-empty").hidden = lists[kind].length > 0;
  if (editing !== null) renderEditor();
}

// ---- add, edit ---------------------------------------------------------------------------
function openEditor(what) {
  editing = what;
  removing = null;
  $("reg-editor").hidden = false;
  renderEditor();
  const first = $("reg-form").querySelector("input:not([disabled]), select");
  if (first) first.focus();
}

function closeEditor() {
  const was = editing;
  editing = null;
  $("reg-editor").hidden = true;
  if (was !== null && !was.add) {
    const button = document.querySelector('#reg-list button[data-edit="' + CSS.escape(was.id) + '"]');
    if (button) button.focus();
  } else if (was !== null) {
    $("reg-add").focus();
  }
}

function renderEditor() {
  const entity = editing.add ? {} : editing.entity;
  $("reg-editor-heading").textContent = editing.add
    ? t("reg.add", {what: tEnum("reg.one", kind)})
    : t("reg.edit_one", {what: tEnum("reg.one", kind), id: editing.id});
  const box = $("reg-fields");
  // keep what was typed when the language changes
  const typed = {};
  for (const input of box.querySelectorAll("[data-field]")) {
    typed[input.dataset.field] = input.type === "checkbox" ? input.checked : input.value;
  }
  box.replaceChildren();
  for (const [field, type, choices] of FORMS[kind]) {
    const wrap = html("div", "reg-field", undefined, box);
    const id = "reg-in-" + field;
    const label = html("label", null, tEnum("reg.field", field), wrap);
    label.htmlFor = id;
    let input;
    if (type === "select" || type === "parent") {
      input = html("select", null, undefined, wrap);
      const options = type === "parent" ? (lists[PARENT[kind]] || []).map((p) => p.id) : choices;
      const blank = (type === "parent" && kind === "devices") || field === "role";
      if (blank || options.length === 0) html("option", null, t("reg.none"), input).value = "";
      for (const option of options) {
        const o = html("option", null, type === "parent" ? option
          : tEnum(field === "role" ? "reg.role" : field === "kind" ? "reg.device_kind"
            : "reg.transport", option), input);
        o.value = option;
      }
    } else {
      input = html("input", null, undefined, wrap);
      input.type = type === "check" ? "checkbox" : type === "secret" ? "text" : type;
      if (type === "secret") {
        input.autocomplete = "off";
        input.spellcheck = false;
        if (!editing.add) input.placeholder = t("reg.key_keep");
      }
    }
    input.id = id;
    input.dataset.field = field;
    const stored = entity[field];
    if (typed[field] !== undefined) {
      if (input.type === "checkbox") input.checked = typed[field]; else input.value = typed[field];
    } else if (input.type === "checkbox") {
      input.checked = stored === true;
    } else if (type !== "secret" && stored !== undefined && stored !== null) {
      input.value = String(stored);
    }
    if (field === "id" && !editing.add) input.disabled = true;  // ids do not change
    const error = html("p", "field-error", undefined, wrap);
    error.id = "reg-err-" + field;
    error.hidden = true;
    input.setAttribute("aria-describedby", error.id);
  }
}

// the body of the change: the site file's fields; in an update an emptied field is null
function formBody() {
  const body = {};
  const before = editing.add ? {} : editing.entity;
  for (const [field, type] of FORMS[kind]) {
    if (field === "id" && !editing.add) continue;
    const input = $("reg-in-" + field);
    if (type === "check") {
      if (input.checked || before[field] !== undefined) body[field] = input.checked;
      continue;
    }
    const raw = input.value.trim();
    if (type === "secret") {
      if (raw) body[field] = raw;  // empty: keep the stored key
      continue;
    }
    if (raw === "") {
      if (before[field] !== undefined && before[field] !== null) body[field] = null;
      continue;
    }
    body[field] = type === "number" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  return body;
}

function clearErrors() {
  for (const p of $("reg-fields").querySelectorAll(".field-error")) { p.hidden = true; p.textContent = ""; }
  for (const input of $("reg-fields").querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  $("reg-form-error").hidden = true;
}

function showError(err) {
  const text = err instanceof api.ApiError && err.detail ? err.detail : ctx.errorText(err);
  const field = err instanceof api.ApiError ? err.body.field : null;
  const slot = field ? $("reg-err-" + field) : null;
  if (slot !== null) {
    slot.textContent = t("reg.field_error", {field: tEnum("reg.field", field), detail: text});
    slot.hidden = false;
    const input = $("reg-in-" + field);
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } else {
    $("reg-form-error").textContent = t("reg.refused", {detail: text});
    $("reg-form-error").hidden = false;
  }
}

async function onSave(event) {
  event.preventDefault();
  clearErrors();
  const body = formBody();
  try {
    if (editing.add) {
      await api.call("POST", "/api/registry/" + kind, body);
    } else {
      await api.call("PUT", "/api/registry/" + kind + "/" + encodeURIComponent(editing.id), body);
    }
    const id = editing.add ? body.id : editing.id;
    editing = null;
    $("reg-editor").hidden = true;
    await load();
    $("reg-result").textContent = t("reg.saved", {what: tEnum("reg.one", kind), id});
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    showError(err);
  }
}

async function onRemove(id) {
  if (removing !== id) {  // the first press asks; the second removes
    removing = id;
    render();
    const again = document.querySelector('#reg-list button[data-remove="' + CSS.escape(id) + '"]');
    if (again) again.focus();
    return;
  }
  removing = null;
  try {
    await api.call("DELETE", "/api/registry/" + kind + "/" + encodeURIComponent(id));
    await load();
    $("reg-result").textContent = t("reg.removed", {what: tEnum("reg.one", kind), id});
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    render();
    $("reg-result").textContent = t("reg.refused", {detail: err.detail || ctx.errorText(err)});
  }
}

// ---- CSV (hub/registry/csvfile.py, through the API) ----------------------------------------
async function exportCsv(name) {
  const result = $("reg-csv-result");
  try {
    const response = await fetch("/api/registry?format=csv&file=" + encodeURIComponent(name),
                                 {credentials: "same-origin", cache: "no-store"});
    if (!response.ok) throw new api.ApiError(response.status, "http_" + response.status, "");
    const blob = await response.blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    window.setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    result.textContent = t("reg.exported", {file: name});
  } catch (err) {
    result.textContent = ctx.errorText(err);
  }
}

async function importCsv(event) {
  event.preventDefault();
  const result = $("reg-csv-result");
  const file = $("reg-import-file").files[0];
  if (!file) { result.textContent = t("reg.import_pick"); return; }
  try {
    const done = await api.upload("POST", "/api/registry/import", await file.text(), "text/csv");
    result.textContent = t("reg.imported", {file: file.name, version: done.version});
    $("reg-import-file").value = "";
    await load();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    result.textContent = t("reg.refused", {detail: err.detail || ctx.errorText(err)});
  }
}
