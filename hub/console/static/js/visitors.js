// Visitors (docs/console.md, "Visitors"; docs/visitors.md): the visits
// (GET /api/visitors/visits, masked as the API answers them; in full only with
// `visitors.personal`, a read the hub records), registration by a clerk
// (POST /api/visitors/visits: the hub's refusal is shown under the field its
// "field" names, nothing stored), approve / refuse / revoke
// (`visitors.approve`) and the pass of an approved visit: its lock codes with
// the window each carries and the QR code, drawn by the hub
// (GET /api/visitors/visits/<id>/pass/qr.svg). The page checks nothing the
// hub decides; it only keeps a flagged visit from being approved without a
// note, which the hub refuses too. A photo given at registration (where face
// access runs) goes to the hub base64 in the same request. With
// `visitors.watch` the page also keeps the watch list
// (GET/POST /api/visitors/watch, DELETE /api/visitors/watch/<ref>): it shows
// kind, note and who added it, never a value (the hub keeps only hashes).
// With `visitors.register` it issues resident tokens for a flat
// (POST /api/visitors/resident-tokens) and revokes all of a flat's
// (POST /api/visitors/resident-tokens/revoke). A token is shown once, in its
// read-only field, and kept nowhere else (no storage, no URL, no log); the
// field is emptied when the clerk is done, on revocation and at logout.
import * as api from "./api.js";
import * as i18n from "./i18n.js";

const {t, tEnum} = i18n;
const $ = (id) => document.getElementById(id);

const STATES = ["requested", "flagged", "approved", "refused", "revoked", "expired"];
const CLOSED = ["refused", "revoked", "expired"];
const FIELDS = ["flat", "name", "phone", "id_number", "plate", "purpose", "valid_from",
                "valid_until", "entry", "entrances", "flat_lock", "photo"];
// action -> the states it applies to (hub/visitors/model.py ACTIONS)
const ACTIONS = {approve: ["requested", "flagged"], refuse: ["requested", "flagged"],
                 revoke: ["requested", "approved"]};

let ctx = null;        // {state, may, errorText, formatTime, sessionEnded} from app.js
let visits = null;     // the last list, or null
let flats = [];        // [{id, building}] from the plan
let selected = null;   // the open visit's id
let shown = null;      // the open visit as last read (with history)
let pass = null;       // its pass, or null
let watch = null;      // the watch list as last read, or null
let removing = null;   // the watch-list ref whose removal waits for a second press
let flatsRead = false; // the token section's flats were read in this session
let issuedFlat = null; // the flat of the token in #vis-tok-token, or null
let revoking = null;   // the flat whose tokens' revocation waits for confirmation

export function init(context) {
  ctx = context;
  $("vis-state").addEventListener("change", () => load());
  $("vis-personal").addEventListener("change", () => { load(); if (selected) openVisit(selected); });
  $("vis-refresh").addEventListener("click", () => { flatsRead = false; load(); });
  $("vis-new").addEventListener("click", openForm);
  $("vis-form").addEventListener("submit", onRegister);
  $("vis-form-close").addEventListener("click", closeSide);
  $("vis-detail-close").addEventListener("click", closeSide);
  $("vis-wl-form").addEventListener("submit", onWatchAdd);
  $("vis-tok-form").addEventListener("submit", onIssue);
  $("vis-tok-flat").addEventListener("change", () => { clearTokenErrors(); cancelRevoke(false); });
  $("vis-tok-revoke").addEventListener("click", askRevoke);
  $("vis-tok-revoke-yes").addEventListener("click", onRevoke);
  $("vis-tok-revoke-no").addEventListener("click", () => cancelRevoke(true));
  $("vis-tok-copy").addEventListener("click", onCopy);
  $("vis-tok-done").addEventListener("click", () => { forgetToken(); $("vis-tok-issue").focus(); });
  $("view-visitors").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && revoking !== null && $("vis-tokens").contains(event.target)) {
      cancelRevoke(true);
    } else if (event.key === "Escape" && !$("vis-side").hidden) closeSide();
  });
}

export function reset() {
  visits = null;
  selected = null;
  shown = null;
  pass = null;
  $("vis-list").replaceChildren();
  $("vis-result").textContent = "";
  watch = null;
  removing = null;
  $("vis-wl-list").replaceChildren();
  $("vis-wl-result").textContent = "";
  flatsRead = false;
  forgetToken();
  revoking = null;
  $("vis-tok-confirm").hidden = true;
  $("vis-tok-result").textContent = "";
  $("vis-tok-flat").replaceChildren();
  clearTokenErrors();
  $("vis-personal").checked = false;
  $("vis-side").hidden = true;
}

export function enabled() {
  return ctx !== null && ctx.state.site.visitors != null && ctx.may("visitors.read");
}

function personal() { return ctx.may("visitors.personal") && $("vis-personal").checked; }

export async function load() {
  if (!enabled() || ctx.state.me === null) return;
  $("vis-new").hidden = !ctx.may("visitors.register");
  $("vis-personal-box").hidden = !ctx.may("visitors.personal");
  $("vis-watch").hidden = !ctx.may("visitors.watch");
  if (ctx.may("visitors.watch")) loadWatch();
  $("vis-tokens").hidden = !ctx.may("visitors.register");
  if (ctx.may("visitors.register") && !flatsRead) loadTokenFlats();
  const query = new URLSearchParams({limit: "200"});
  if ($("vis-state").value) query.set("state", $("vis-state").value);
  if (personal()) query.set("personal", "1");
  try {
    visits = (await api.call("GET", "/api/visitors/visits?" + query)).visits;
    $("vis-result").textContent = "";
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-result").textContent = ctx.errorText(err);
    return;
  }
  render();
}

// An alarm about a visit came on the alarm stream (a watch-list hit, an
// overstay): read the list again, and the open visit, without moving the focus.
export async function changed() {
  if (!enabled() || ctx.state.me === null || document.body.dataset.view !== "visitors") return;
  await load();
  if (selected !== null && !$("vis-detail").hidden) await openVisit(selected, false);
}

function windowText(from, until) {
  return t("vis.window", {from: ctx.formatTime(epochIso(from)), until: ctx.formatTime(epochIso(until))});
}

function epochIso(seconds) { return seconds === null || seconds === undefined ? "" : new Date(seconds * 1000).toISOString(); }

function flags(v) {
  const out = (v.watch || []).map((kind) => tEnum("vis.watch", kind));
  if (v.auto_approved) out.push(t("vis.flag.auto"));
  out.push(v.one_time ? t("vis.entry.single") : t("vis.entry.repeated"));
  if (v.flat_lock) out.push(t("vis.flag.flat_lock"));
  return out.join(t("location.separator"));
}

function flagged(v) { return v.state === "flagged" || (v.watch || []).length > 0; }

export function render() {
  if (!enabled() || ctx.state.me === null) return;
  const select = $("vis-state");
  const chosen = select.value;
  select.replaceChildren();
  for (const code of ["", ...STATES]) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = code ? tEnum("vis.state", code) : t("vis.filter.all");
    select.appendChild(option);
  }
  select.value = chosen;
  $("vis-zone").textContent = t("vis.zone", {zone: ctx.state.site.timezone});
  renderTokens();
  if (visits === null) return;
  const body = $("vis-list");
  body.replaceChildren();
  for (const v of visits) {
    const row = document.createElement("tr");
    row.dataset.visit = v.id;
    row.dataset.state = v.state;
    row.classList.toggle("is-flagged", flagged(v));
    row.classList.toggle("is-closed", CLOSED.includes(v.state));
    row.classList.toggle("is-selected", v.id === selected);
    const texts = [[tEnum("vis.state", v.state), "v-state"], [v.flat, "v-flat"],
                   [v.name, "v-name"], [windowText(v.valid_from, v.valid_until), "v-window"],
                   [(v.entrances || []).join(t("location.separator")), "v-entrances"],
                   [flags(v), "v-flags"]];
    for (const [text, cls] of texts) {
      const td = document.createElement("td");
      td.className = cls;
      td.textContent = text;
      row.appendChild(td);
    }
    const cell = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.dataset.open = v.id;
    open.textContent = t("vis.open");
    open.addEventListener("click", () => openVisit(v.id));
    cell.appendChild(open);
    row.appendChild(cell);
    body.appendChild(row);
  }
  $("vis-empty").hidden = visits.length > 0;
  if (shown !== null && !$("vis-detail").hidden) renderDetail();
  if (!$("vis-form").hidden) renderEntrances();
  renderWatch();
}

function closeSide() {
  const back = selected;
  selected = null;
  shown = null;
  pass = null;
  $("vis-side").hidden = true;
  render();
  const button = back && document.querySelector('#vis-list button[data-open="' + CSS.escape(back) + '"]');
  if (button) button.focus(); else $("vis-refresh").focus();
}

// ---- registration -------------------------------------------------------------------
// A wall-clock time in the site's zone ("2026-12-04T14:30") -> epoch seconds.
function zoneOffset(ms, zone) {
  const parts = {};
  for (const p of new Intl.DateTimeFormat("en-US", {timeZone: zone, hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit"}).formatToParts(new Date(ms))) parts[p.type] = p.value;
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24,
                        +parts.minute, +parts.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

export function zonedToEpoch(text, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || "");
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const first = wall - zoneOffset(wall, zone);
  return Math.round((wall - zoneOffset(first, zone)) / 1000);
}

function epochToZoned(seconds, zone) {
  const wall = new Date(seconds * 1000 + zoneOffset(seconds * 1000, zone));
  return wall.toISOString().slice(0, 16);
}

// The site's flats, from the plan (the registration form and the token section).
async function readFlats() {
  const plan = await api.call("GET", "/api/site/plan");
  const read = [];
  for (const b of plan.buildings || []) {
    for (const floor of b.floors || []) {
      for (const f of floor.flats || []) read.push({id: f.id, building: b.name || b.id});
    }
  }
  flats = read;
}

// A select of the flats, keeping the one chosen if it is still there.
function fillFlats(select) {
  const chosen = select.value;
  select.replaceChildren();
  for (const f of flats) {
    const option = document.createElement("option");
    option.value = f.id;
    option.textContent = t("vis.flat_option", {flat: f.id, building: f.building});
    select.appendChild(option);
  }
  if (chosen && flats.some((f) => f.id === chosen)) select.value = chosen;
}

function renderEntrances() {
  const box = $("vis-entrance-boxes");
  const ticked = new Set([...box.querySelectorAll("input:checked")].map((el) => el.value));
  box.replaceChildren();
  for (const id of (ctx.state.site.visitors || {}).entrances || []) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = id;
    input.id = "vis-entrance-" + id;
    input.checked = ticked.has(id);
    const span = document.createElement("span");
    span.textContent = id;
    label.append(input, span);
    box.appendChild(label);
  }
}

function clearErrors() {
  for (const field of FIELDS) {
    $("vis-err-" + field).hidden = true;
    $("vis-in-" + field).removeAttribute("aria-invalid");
  }
  $("vis-form-error").hidden = true;
}

async function openForm() {
  selected = null;
  shown = null;
  pass = null;
  $("vis-side").hidden = false;
  $("vis-detail").hidden = true;
  $("vis-form").hidden = false;
  clearErrors();
  try {
    await readFlats();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-form-error").textContent = ctx.errorText(err);
    $("vis-form-error").hidden = false;
  }
  fillFlats($("vis-in-flat"));
  renderEntrances();
  $("vis-photo-box").hidden = !(ctx.state.site.visitors || {}).photo;
  const zone = ctx.state.site.timezone;
  if (!$("vis-in-valid_from").value) {
    const start = Math.ceil(Date.now() / 900000) * 900;   // the next quarter hour
    $("vis-in-valid_from").value = epochToZoned(start, zone);
    $("vis-in-valid_until").value = epochToZoned(start + 4 * 3600, zone);
  }
  render();
  $("vis-in-flat").focus();
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function formBody() {
  const zone = ctx.state.site.timezone;
  const value = (field) => $("vis-in-" + field).value.trim();
  const body = {flat: value("flat"), name: value("name"), phone: value("phone"),
                id_number: value("id_number").toUpperCase(), purpose: value("purpose"),
                valid_from: zonedToEpoch(value("valid_from"), zone),
                valid_until: zonedToEpoch(value("valid_until"), zone),
                entry: value("entry"), flat_lock: $("vis-in-flat_lock").checked,
                entrances: [...$("vis-entrance-boxes").querySelectorAll("input:checked")]
                  .map((el) => el.value)};
  if (value("plate")) body.plate = value("plate");
  const photo = $("vis-in-photo").files[0];
  if (!$("vis-photo-box").hidden && photo) body.photo = await base64(photo);
  return body;
}

function fieldOf(err) {
  const named = err.body && typeof err.body.field === "string" ? err.body.field : "";
  const field = named.replace(/\[\d+\]$/, "");
  return FIELDS.includes(field) ? field : null;
}

function showFieldError(field, text) {
  const slot = $("vis-err-" + field);
  slot.textContent = text;
  slot.hidden = false;
  const input = $("vis-in-" + field);
  input.setAttribute("aria-invalid", "true");
  const target = field === "entrances" ? (input.querySelector("input") || input) : input;
  target.focus();
}

async function onRegister(event) {
  event.preventDefault();
  clearErrors();
  $("vis-submit").disabled = true;
  try {
    const visit = await api.call("POST", "/api/visitors/visits", await formBody());
    $("vis-form").reset();
    $("vis-form").hidden = true;
    let said = t("vis.registered", {state: tEnum("vis.state", visit.state)});
    if (visit.face) {
      const why = visit.face.reason;
      said = t("vis.registered_face", {registered: said, face: visit.face.enrolled
        ? t("vis.face.enrolled") : t("vis.face.not_enrolled",
          {reason: i18n.has("face.reason", why) ? tEnum("face.reason", why) : (why || "")})});
    }
    await load();
    await openVisit(visit.id);
    $("vis-result").textContent = said;   // after the list is read again (which clears it)
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    const field = err.code === "invalid" ? fieldOf(err) : null;
    let reason = err.detail || ctx.errorText(err);
    if (field !== null) {
      // the hub's message starts with the field it names, which the page writes in words
      const prefix = err.body.field + ": ";
      if (reason.startsWith(prefix)) reason = reason.slice(prefix.length);
      // a photo the face pipeline refused carries its reason, which has a text here
      if (field === "photo" && i18n.has("face.reason", err.body.reason)) {
        reason = tEnum("face.reason", err.body.reason);
      }
      showFieldError(field, t("vis.field_refused", {field: tEnum("vis.field", field), detail: reason}));
    } else {
      $("vis-form-error").textContent = t("reg.refused", {detail: reason});
      $("vis-form-error").hidden = false;
    }
  } finally {
    $("vis-submit").disabled = false;
  }
}

// ---- one visit -------------------------------------------------------------------------
async function openVisit(id, focus = true) {
  selected = id;
  const query = personal() ? "?personal=1" : "";
  try {
    shown = await api.call("GET", "/api/visitors/visits/" + id + query);
    pass = null;
    if (shown.state === "approved" && ctx.may("visitors.register")) {
      pass = await api.call("GET", "/api/visitors/visits/" + id + "/pass");
    }
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-result").textContent = ctx.errorText(err);
    return;
  }
  $("vis-side").hidden = false;
  $("vis-form").hidden = true;
  $("vis-detail").hidden = false;
  if (focus) {
    $("vis-note").value = "";
    $("vis-err-note").hidden = true;
    $("vis-action-result").textContent = "";
  }
  render();
  renderDetail();
  if (focus) $("vis-detail-heading").focus();
}

function addField(list, label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value === null || value === undefined || value === "" ? t("vis.none") : String(value);
  list.append(dt, dd);
  return dd;
}

function renderDetail() {
  const v = shown;
  if (v === null) return;
  const banner = $("vis-watch-banner");
  banner.hidden = !flagged(v);
  banner.textContent = t("vis.watch_banner", {hits: (v.watch || []).map((k) => tEnum("vis.watch", k))
    .join(t("location.separator"))});
  const list = $("vis-fields");
  list.replaceChildren();
  addField(list, t("vis.col.state"), tEnum("vis.state", v.state)).className = "v-state";
  addField(list, t("vis.field.flat"), v.flat);
  addField(list, t("vis.field.name"), v.name);
  addField(list, t("vis.field.phone"), v.phone);
  addField(list, t("vis.field.id_number"), v.id_number).dataset.field = "id_number";
  addField(list, t("vis.field.plate"), v.plate);
  addField(list, t("vis.field.purpose"), v.purpose);
  addField(list, t("vis.col.window"), windowText(v.valid_from, v.valid_until));
  addField(list, t("vis.field.entry"), v.one_time ? t("vis.entry.single") : t("vis.entry.repeated"));
  addField(list, t("vis.field.entrances"), (v.entrances || []).join(t("location.separator")));
  addField(list, t("vis.field.flat_lock"), v.flat_lock ? t("vis.yes") : t("vis.no"));
  addField(list, t("vis.created"), t("vis.by", {at: ctx.formatTime(epochIso(v.created_at)), actor: v.created_by}));
  if (v.decided_at) {
    addField(list, t("vis.decided"), t("vis.by", {at: ctx.formatTime(epochIso(v.decided_at)),
                                                   actor: v.auto_approved ? t("vis.flag.auto") : v.decided_by}));
  }
  if (v.note) addField(list, t("vis.note"), v.note);
  addField(list, t("vis.purge_after"), ctx.formatTime(epochIso(v.purge_after)));
  addField(list, t("vis.masked"), v.masked ? t("vis.yes") : t("vis.no"));
  // actions: only for a role that may decide, only those the state allows
  const buttons = $("vis-buttons");
  buttons.replaceChildren();
  const allowed = ctx.may("visitors.approve")
    ? Object.keys(ACTIONS).filter((a) => ACTIONS[a].includes(v.state)) : [];
  for (const action of allowed) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.textContent = tEnum("vis.action", action);
    button.addEventListener("click", () => onDecide(action));
    buttons.appendChild(button);
  }
  $("vis-actions").hidden = allowed.length === 0;
  renderPass();
  const entries = $("vis-entry-list");
  entries.replaceChildren();
  for (const e of v.entries || []) {
    const row = document.createElement("tr");
    for (const text of [ctx.formatTime(epochIso(e.at)), e.entrance, tEnum("vis.cred", e.credential),
                        tEnum("vis.dir", e.direction)]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    entries.appendChild(row);
  }
  $("vis-no-entries").hidden = (v.entries || []).length > 0;
  const history = $("vis-history-list");
  history.replaceChildren();
  for (const step of v.history || []) {
    const row = document.createElement("tr");
    for (const text of [ctx.formatTime(epochIso(step.at)), tEnum("vis.history", step.action),
                        step.actor, step.detail || ""]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    history.appendChild(row);
  }
}

function renderPass() {
  const box = $("vis-pass");
  box.hidden = pass === null;
  if (pass === null) {
    $("vis-qr").removeAttribute("src");
    return;
  }
  const fields = $("vis-pass-fields");
  fields.replaceChildren();
  addField(fields, t("vis.pass.window"), windowText(pass.valid_from, pass.valid_until));
  addField(fields, t("vis.field.entrances"), (pass.entrances || []).join(t("location.separator")));
  addField(fields, t("vis.pass.plate"), pass.plate
    ? t("vis.pass.plate_allowed", {window: windowText(pass.valid_from, pass.valid_until)})
    : t("vis.pass.no_plate"));
  addField(fields, t("vis.pass.face"), t("vis.pass.face_window",
    {window: windowText(pass.valid_from, pass.valid_until)}));
  const codes = $("vis-code-list");
  codes.replaceChildren();
  for (const c of pass.codes || []) {
    const row = document.createElement("tr");
    row.dataset.device = c.device;
    const texts = [[c.device, ""], [c.digits, "code-digits"],
                   [ctx.formatTime(epochIso(c.valid_from)), ""],
                   [ctx.formatTime(epochIso(c.valid_until)), ""],
                   [c.one_time ? t("vis.pass.once") : t("vis.pass.repeat"), ""]];
    for (const [text, cls] of texts) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      row.appendChild(td);
    }
    codes.appendChild(row);
  }
  $("vis-no-codes").hidden = (pass.codes || []).length > 0;
  const img = $("vis-qr");
  img.alt = t("vis.pass.qr_alt");
  const src = "/api/visitors/visits/" + pass.visit + "/pass/qr.svg";
  if (img.getAttribute("src") !== src) img.src = src;
  $("vis-qr-text").textContent = pass.qr;
}

async function onDecide(action) {
  const note = $("vis-note").value.trim();
  $("vis-err-note").hidden = true;
  $("vis-note").removeAttribute("aria-invalid");
  if (action === "approve" && shown.state === "flagged" && !note) {
    // the hub approves a watch-list hit only with a note saying why (409 otherwise)
    $("vis-err-note").textContent = t("vis.note_required");
    $("vis-err-note").hidden = false;
    $("vis-note").setAttribute("aria-invalid", "true");
    $("vis-note").focus();
    return;
  }
  for (const b of $("vis-buttons").querySelectorAll("button")) b.disabled = true;
  try {
    await api.call("POST", "/api/visitors/visits/" + shown.id + "/" + action,
                   note ? {note} : {});
    const id = shown.id;
    await load();
    await openVisit(id);
    $("vis-action-result").textContent = t("vis.done", {action: tEnum("vis.action", action)});
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-action-result").textContent = t("reg.refused", {detail: err.detail || ctx.errorText(err)});
    for (const b of $("vis-buttons").querySelectorAll("button")) b.disabled = false;
  }
}

// ---- the watch list (visitors.watch) ------------------------------------------------
async function loadWatch() {
  try {
    watch = (await api.call("GET", "/api/visitors/watch")).entries;
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-wl-result").textContent = ctx.errorText(err);
    return;
  }
  renderWatch();
}

function renderWatch() {
  if (watch === null || $("vis-watch").hidden) return;
  const body = $("vis-wl-list");
  body.replaceChildren();
  for (const e of watch) {
    const row = document.createElement("tr");
    row.dataset.ref = String(e.ref);
    for (const text of [tEnum("vis.wl.kind", e.kind), e.note || t("vis.none"),
                        t("vis.by", {at: ctx.formatTime(epochIso(e.added_at)), actor: e.added_by})]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    const cell = document.createElement("td");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.dataset.remove = String(e.ref);
    remove.textContent = removing === e.ref ? t("reg.remove_confirm") : t("reg.remove");
    remove.addEventListener("click", () => onWatchRemove(e.ref));
    cell.appendChild(remove);
    row.appendChild(cell);
    body.appendChild(row);
  }
  $("vis-wl-empty").hidden = watch.length > 0;
}

function watchError(field, text) {
  const slot = $("vis-wl-err-" + field);
  slot.textContent = text;
  slot.hidden = false;
  $("vis-wl-" + field).setAttribute("aria-invalid", "true");
  $("vis-wl-" + field).focus();
}

async function onWatchAdd(event) {
  event.preventDefault();
  for (const field of ["value", "note"]) {
    $("vis-wl-err-" + field).hidden = true;
    $("vis-wl-" + field).removeAttribute("aria-invalid");
  }
  const kind = $("vis-wl-kind").value;
  const body = {kind, value: $("vis-wl-value").value.trim()};
  if (kind === "id") body.value = body.value.toUpperCase();
  const note = $("vis-wl-note").value.trim();
  if (note) body.note = note;
  $("vis-wl-add").disabled = true;
  try {
    const done = await api.call("POST", "/api/visitors/watch", body);
    $("vis-wl-value").value = "";
    $("vis-wl-note").value = "";
    $("vis-wl-result").textContent = t("vis.wl.added_result", {count: (done.flagged || []).length});
    await load();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    const named = err.body && typeof err.body.field === "string" ? err.body.field : "";
    let reason = err.detail || ctx.errorText(err);
    if (named === "value" || named === "note") {
      if (reason.startsWith(named + ": ")) reason = reason.slice(named.length + 2);
      watchError(named, t("vis.field_refused", {field: tEnum("vis.wl", named), detail: reason}));
    } else {
      $("vis-wl-result").textContent = t("reg.refused", {detail: reason});
    }
  } finally {
    $("vis-wl-add").disabled = false;
  }
}

async function onWatchRemove(ref) {
  if (removing !== ref) {  // the first press asks; the second removes
    removing = ref;
    renderWatch();
    const again = document.querySelector('#vis-wl-list button[data-remove="' + ref + '"]');
    if (again) again.focus();
    return;
  }
  removing = null;
  try {
    await api.call("DELETE", "/api/visitors/watch/" + ref);
    $("vis-wl-result").textContent = t("vis.wl.removed");
    await loadWatch();
    $("vis-wl-value").focus();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-wl-result").textContent = t("reg.refused", {detail: err.detail || ctx.errorText(err)});
  }
}

// ---- resident tokens (visitors.register) ---------------------------------------------
async function loadTokenFlats() {
  flatsRead = true;
  try {
    await readFlats();
  } catch (err) {
    flatsRead = false;
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("vis-tok-result").textContent = ctx.errorText(err);
    return;
  }
  renderTokens();
}

function renderTokens() {
  if ($("vis-tokens").hidden) return;
  fillFlats($("vis-tok-flat"));
  if (issuedFlat !== null) $("vis-tok-token-label").textContent = t("vis.tok.token_label", {flat: issuedFlat});
  if (revoking !== null) $("vis-tok-confirm-text").textContent = t("vis.tok.revoke_ask", {flat: revoking});
}

function clearTokenErrors() {
  $("vis-tok-err-flat").hidden = true;
  $("vis-tok-flat").removeAttribute("aria-invalid");
}

function forgetToken() {
  issuedFlat = null;
  $("vis-tok-token").value = "";
  $("vis-tok-copied").textContent = "";
  $("vis-tok-issued").hidden = true;
}

// A refusal: under the flat when the hub names it (400 with "field"), else in the
// section's status line, with `key`'s words ("not issued", "not revoked").
function tokenRefused(err, key) {
  if (err.code === "invalid" && err.body && err.body.field === "flat") {
    let reason = err.detail || ctx.errorText(err);
    if (reason.startsWith("flat: ")) reason = reason.slice("flat: ".length);
    const slot = $("vis-tok-err-flat");
    slot.textContent = t("vis.tok.flat_refused", {detail: reason});
    slot.hidden = false;
    $("vis-tok-flat").setAttribute("aria-invalid", "true");
    $("vis-tok-flat").focus();
    return;
  }
  // a code the console has words for (forbidden, ...) in them, else the hub's detail
  const detail = i18n.has("error", err.code) ? ctx.errorText(err) : (err.detail || ctx.errorText(err));
  $("vis-tok-result").textContent = key === "revoke"
    ? t("vis.tok.not_revoked", {detail}) : t("vis.tok.not_issued", {detail});
}

async function onIssue(event) {
  event.preventDefault();
  clearTokenErrors();
  cancelRevoke(false);
  forgetToken();
  $("vis-tok-result").textContent = "";
  const flat = $("vis-tok-flat").value;
  $("vis-tok-issue").disabled = true;
  try {
    const done = await api.call("POST", "/api/visitors/resident-tokens", {flat});
    issuedFlat = done.flat;
    $("vis-tok-token").value = done.token;
    $("vis-tok-issued").hidden = false;
    $("vis-tok-result").textContent = t("vis.tok.issued", {flat: done.flat});
    renderTokens();
    $("vis-tok-token").focus();
    $("vis-tok-token").select();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    tokenRefused(err, "issue");
  } finally {
    $("vis-tok-issue").disabled = false;
  }
}

async function onCopy() {
  const box = $("vis-tok-token");
  box.focus();
  box.select();   // selected, so Ctrl+C works where the browser allows no copying
  let copied = false;
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(box.value);
      copied = true;
    } catch (err) {
      copied = false;
    }
  }
  if (!copied) {
    try { copied = document.execCommand("copy"); } catch (err) { copied = false; }
  }
  $("vis-tok-copied").textContent = copied ? t("vis.tok.copied") : t("vis.tok.copy_failed");
}

function askRevoke() {
  clearTokenErrors();
  $("vis-tok-result").textContent = "";
  revoking = $("vis-tok-flat").value;
  $("vis-tok-confirm").hidden = false;
  renderTokens();
  $("vis-tok-revoke-yes").focus();
}

function cancelRevoke(focus) {
  const was = revoking;
  revoking = null;
  $("vis-tok-confirm").hidden = true;
  if (focus && was !== null) $("vis-tok-revoke").focus();
}

async function onRevoke() {
  const flat = revoking;
  if (flat === null) return;
  $("vis-tok-revoke-yes").disabled = true;
  try {
    const done = await api.call("POST", "/api/visitors/resident-tokens/revoke", {flat});
    cancelRevoke(false);
    if (issuedFlat === done.flat) forgetToken();   // the token shown no longer works
    $("vis-tok-result").textContent = done.revoked > 0
      ? t("vis.tok.revoked", {flat: done.flat, count: done.revoked})
      : t("vis.tok.revoked_none", {flat: done.flat});
    $("vis-tok-revoke").focus();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    cancelRevoke(false);
    tokenRefused(err, "revoke");
    if ($("vis-tok-err-flat").hidden) $("vis-tok-revoke").focus();
  } finally {
    $("vis-tok-revoke-yes").disabled = false;
  }
}
