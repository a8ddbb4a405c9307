// The property-office console (docs/console.md): login, live alarms, alarm
// details and actions, password change. Every change is a call of the hub's
// documented API; buttons appear only for what the account's role may do.
import * as api from "./api.js";
import * as bell from "./bell.js";
import * as i18n from "./i18n.js";
import * as plan from "./plan.js";
import * as registry from "./registry.js";
import * as access from "./access.js";
import * as device from "./device.js";
import * as faces from "./faces.js";
import * as visitors from "./visitors.js";

const {t, tEnum} = i18n;
const $ = (id) => document.getElementById(id);

// lifecycle ranks (hub/alarms/lifecycle.py): an action is offered only forward
const RANK = {raised: 0, dispatched: 1, acknowledged: 2, resolved: 3, cancelled: 3, false_alarm: 3};
const ACTIONS = [["dispatch", "dispatched"], ["acknowledge", "acknowledged"],
                 ["resolve", "resolved"], ["false_alarm", "false_alarm"], ["cancel", "cancelled"]];
const LIST_ACTIONS = ["acknowledge"];
const REOPEN_MS = 2000;

const state = {
  me: null,            // {account, role, permissions}
  site: {name: "", timezone: "UTC"},
  alarms: new Map(),   // id -> newest document
  lastId: null,        // the feed id the list is up to
  stream: null,
  reopen: null,
  selected: null,
  trail: [],
  responders: new Map(),  // id -> newest responder document (the stream, the plan)
  nearest: [],            // for the open alarm: responders on duty, nearest first
};

function may(permission) { return state.me !== null && state.me.permissions.includes(permission); }

function formatTime(iso) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return new Intl.DateTimeFormat(i18n.current(), {
    timeZone: state.site.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"}).format(when);
}

function epochIso(seconds) { return new Date(seconds * 1000).toISOString(); }

function errorText(err) {
  if (err instanceof api.ApiError && i18n.has("error", err.code)) return tEnum("error", err.code);
  const detail = err instanceof api.ApiError ? err.detail || err.code : String(err);
  return t("error.generic", {detail});
}

function showNotice(text) {
  const box = $("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

// ---- views -------------------------------------------------------------------------------
function show(view) {
  document.body.dataset.view = view;
  for (const name of ["login", "password", "alarms", "plan", "registry", "access", "faces", "visitors", "device"]) $("view-" + name).hidden = name !== view;
  const loggedIn = state.me !== null;
  $("nav").hidden = !loggedIn;
  $("live-status").hidden = !loggedIn;
  if (view === "login") $("login-account").focus();
  if (view === "password") $("password-current").focus();
}

function renderWho() {
  $("who").textContent = state.me === null ? "" : t("nav.signed_in_as", {
    account: state.me.account, role: tEnum("role", state.me.role)});
  $("site-name").textContent = state.me === null ? "" : state.site.name || "";
}

function setLive(status) {
  const box = $("live-status");
  box.dataset.status = status;
  box.textContent = status === "live" ? t("live.live")
    : status === "connecting" ? t("live.connecting") : t("live.offline");
}

// ---- login, logout, password -------------------------------------------------------------
async function onLogin(event) {
  event.preventDefault();
  bell.unlock();  // the submit is a user gesture: the browser lets audio start now
  const error = $("login-error");
  error.hidden = true;
  try {
    const login = await api.call("POST", "/api/login", {
      account: $("login-account").value.trim(), password: $("login-password").value});
    api.setCsrf(login.csrf_token);
    $("login-password").value = "";
    await startSession();
  } catch (err) {
    error.textContent = err.code === "login_failed" ? t("login.failed")
      : err.code === "too_many_attempts" ? t("login.locked", {seconds: err.retryAfter || "?"})
      : errorText(err);
    error.hidden = false;
  }
}

async function startSession() {
  state.me = await api.call("GET", "/api/session");
  state.site = await api.call("GET", "/api/site");
  showNotice("");
  renderWho();
  document.body.classList.toggle("may-see-residents", may("residents.read"));
  for (const el of document.querySelectorAll(".col-resident")) el.hidden = !may("residents.read");
  $("nav-registry").hidden = state.site.registry !== true;
  $("nav-access").hidden = !may("access_log.read");
  $("nav-faces").hidden = !may("faces.read");
  $("nav-visitors").hidden = !visitors.enabled();
  state.alarms.clear();
  state.responders.clear();
  state.lastId = null;
  renderList();
  show("alarms");
  openStream();
  plan.load();
}

function endSession(message) {
  closeStream();
  api.setCsrf(null);
  state.me = null;
  state.alarms.clear();
  state.responders.clear();
  plan.reset();
  registry.reset();
  access.reset();
  faces.reset();
  visitors.reset();
  device.reset();
  state.lastId = null;
  closeDetail();
  renderList();
  renderWho();
  bell.ring(false);
  show("login");
  const error = $("login-error");
  error.textContent = message ? t(message) : "";
  error.hidden = !message;
}

async function onLogout() {
  try {
    await api.call("POST", "/api/logout");
  } catch (err) {
    // the session is ended on this page whatever the hub answered
  }
  endSession("login.logged_out");
}

async function onPassword(event) {
  event.preventDefault();
  const error = $("password-error");
  error.hidden = true;
  const current = $("password-current").value;
  const fresh = $("password-new").value;
  if (fresh !== $("password-confirm").value) {
    error.textContent = t("password.mismatch");
    error.hidden = false;
    return;
  }
  try {
    await api.call("POST", "/api/password", {current, new: fresh});
    for (const id of ["password-current", "password-new", "password-confirm"]) $(id).value = "";
    endSession("login.password_changed");  // the hub ended every session of the account
  } catch (err) {
    error.textContent = err.code === "wrong_password" ? t("password.wrong")
      : err.code === "weak_password" ? t("password.weak", {detail: err.detail})
      : errorText(err);
    error.hidden = false;
    if (err.code === "session_expired" || err.code === "unauthorized") {
      endSession("login.session_ended");
    }
  }
}

// ---- the live stream (GET /api/alarms/stream) ----------------------------------------------
function openStream() {
  closeStream();
  setLive("connecting");
  // after a stream the browser gave up on, start from the id the list is at;
  // while it lives, the browser itself resends it as Last-Event-ID
  const url = "/api/alarms/stream" + (state.lastId !== null ? "?after=" + state.lastId : "");
  const stream = new EventSource(url, {withCredentials: true});
  state.stream = stream;
  stream.addEventListener("alarm", (event) => {
    const data = JSON.parse(event.data);
    state.lastId = data.feed_id;
    upsert(data.alarm);
  });
  // every responder with a position is sent again before "ready" on each
  // connection; one that is not has none on this hub (it restarted: positions
  // live in its memory only), so its old marker must not stay on the plan
  let reported = new Set();
  stream.addEventListener("open", () => { reported = new Set(); });
  stream.addEventListener("responder", (event) => {
    const r = JSON.parse(event.data).responder;
    reported.add(r.id);
    state.responders.set(r.id, r);
    plan.responderChanged();
    if (state.selected !== null) loadNearest(state.selected);
  });
  stream.addEventListener("ready", (event) => {
    state.lastId = JSON.parse(event.data).feed_id;
    let forgot = false;
    for (const [id, r] of state.responders) {
      if (!reported.has(id) && r.x !== null && r.x !== undefined) {
        state.responders.set(id, {...r, x: null, y: null, at: null, source: null});
        forgot = true;
      }
    }
    if (forgot) plan.responderChanged();
    setLive("live");
  });
  stream.addEventListener("reset", () => {
    state.alarms.clear();
    renderList();
  });
  stream.addEventListener("ended", (event) => {
    const reason = JSON.parse(event.data).reason;
    if (reason === "session" || reason === "forbidden") endSession("login.session_ended");
    else setLive("offline");  // the hub stops; the browser reconnects by itself
  });
  stream.onerror = () => {
    if (state.stream !== stream) return;
    setLive("offline");
    if (stream.readyState === EventSource.CLOSED) {
      // the hub refused the stream (401, 503...): is the session still there?
      state.reopen = window.setTimeout(checkAndReopen, REOPEN_MS);
    }
  };
}

async function checkAndReopen() {
  state.reopen = null;
  try {
    await api.call("GET", "/api/session");
  } catch (err) {
    if (err.status === 401) { endSession("login.session_ended"); return; }
  }
  if (state.me !== null) openStream();
}

function closeStream() {
  if (state.reopen !== null) { window.clearTimeout(state.reopen); state.reopen = null; }
  if (state.stream !== null) { state.stream.close(); state.stream = null; }
}

// ---- the alarm list ------------------------------------------------------------------------
function upsert(doc) {
  const known = state.alarms.get(doc.id);
  if (known && known.seq > doc.seq) return;  // an older version never replaces a newer one
  state.alarms.set(doc.id, doc);
  renderList();
  plan.alarmsChanged();
  // a visitor alarm (watch-list hit, overstay) changed a visit: the visitors page reads again
  if (String(doc.type).startsWith("visitor_")) visitors.changed();
  if (state.selected === doc.id) loadDetail(doc.id);
}

function location(doc) {
  const parts = [];
  if (doc.building) parts.push(t("location.building", {building: doc.building}));
  if (doc.flat) parts.push(t("location.flat", {flat: doc.flat}));
  if (doc.entrance) parts.push(t("location.entrance", {entrance: doc.entrance}));
  return parts.length ? parts.join(t("location.separator")) : t("location.none");
}

function allowedActions(doc) {
  if (!may("alarms.act")) return [];
  const rank = RANK[doc.state];
  return ACTIONS.filter(([, target]) => rank !== undefined && rank < 3 && RANK[target] > rank)
    .map(([action]) => action);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (text !== undefined) td.textContent = text;
  row.appendChild(td);
  return td;
}

function actionButton(action, alarmId, where) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.action = action;
  button.textContent = tEnum("action", action);
  button.addEventListener("click", () => act(alarmId, action, where));
  return button;
}

// Rows are kept per alarm and rebuilt only when their alarm (or the language)
// changed, so focus and a pointer on a row survive other alarms' updates.
const rows = new Map();  // alarm id -> {row, key}

function fillRow(row, doc, seeResidents) {
  row.replaceChildren();
  row.dataset.alarmId = doc.id;
  row.dataset.state = doc.state;
  row.classList.toggle("is-raised", doc.state === "raised");
  row.classList.toggle("is-closed", RANK[doc.state] === 3);
  cell(row, formatTime(doc.raised_at), "cell-time");
  cell(row, tEnum("type", doc.type), "cell-type");
  const sev = cell(row, undefined, "cell-severity");
  const badge = document.createElement("span");
  badge.className = "badge sev-" + doc.severity;
  badge.textContent = tEnum("severity", doc.severity);
  sev.appendChild(badge);
  cell(row, location(doc), "cell-location");
  if (seeResidents) {
    cell(row, doc.resident ? doc.resident.name || doc.resident.id : "", "cell-resident col-resident");
  }
  cell(row, tEnum("state", doc.state), "state cell-state");
  const actions = cell(row, undefined, "cell-actions");
  for (const action of allowedActions(doc).filter((a) => LIST_ACTIONS.includes(a))) {
    actions.appendChild(actionButton(action, doc.id, "list"));
  }
  const details = document.createElement("button");
  details.type = "button";
  details.dataset.details = "1";
  details.textContent = t("alarms.details");
  details.addEventListener("click", () => openDetail(doc.id));
  actions.appendChild(details);
}

function renderList() {
  const body = $("alarm-list");
  const docs = [...state.alarms.values()].sort((a, b) => {
    const open = (RANK[a.state] === 3) - (RANK[b.state] === 3);
    return open !== 0 ? open : String(b.raised_at).localeCompare(String(a.raised_at));
  });
  const focused = document.activeElement;
  const refocus = focused && focused.closest && focused.closest("#alarm-list tr")
    ? [focused.closest("tr").dataset.alarmId, focused.dataset.action] : null;
  const seeResidents = may("residents.read");
  const keep = new Set();
  docs.forEach((doc, index) => {
    const key = [doc.seq, doc.state, i18n.current(), seeResidents, may("alarms.act")].join("|");
    let entry = rows.get(doc.id);
    if (!entry) {
      entry = {row: document.createElement("tr"), key: null};
      rows.set(doc.id, entry);
    }
    if (entry.key !== key) {
      fillRow(entry.row, doc, seeResidents);
      entry.key = key;
    }
    entry.row.classList.toggle("is-selected", state.selected === doc.id);
    if (body.children[index] !== entry.row) body.insertBefore(entry.row, body.children[index] || null);
    keep.add(doc.id);
  });
  for (const [id, entry] of rows) {
    if (!keep.has(id)) { entry.row.remove(); rows.delete(id); }
  }
  $("alarms-empty").hidden = docs.length > 0;
  $("alarm-table").hidden = docs.length === 0;
  const open = docs.filter((d) => RANK[d.state] !== 3).length;
  $("open-count").textContent = t("alarms.open_count", {count: open});
  bell.ring(docs.some((d) => d.state === "raised"));
  if (refocus && !document.activeElement.closest("#alarm-list tr")) {
    // the focused button went with its row's rebuild: focus its successor
    const entry = rows.get(refocus[0]);
    const target = entry && ((refocus[1] && entry.row.querySelector(
      '[data-action="' + refocus[1] + '"]')) || entry.row.querySelector("[data-details]"));
    if (target) target.focus();
  }
}

// ---- actions -------------------------------------------------------------------------------
async function act(alarmId, action, where) {
  const result = $("detail-result");
  const body = {action, command_id: "console-" + crypto.randomUUID()};
  const note = where === "detail" ? $("detail-note").value.trim() : "";
  if (note) body.note = note;
  const assignee = where === "detail" && action === "dispatch" ? $("detail-assignee").value : "";
  if (assignee) body.assignee = assignee;
  try {
    const done = await api.call("POST", "/api/alarms/" + encodeURIComponent(alarmId) + "/actions",
                                body);
    if (where === "detail") {
      $("detail-note").value = "";
      result.textContent = t("action.done", {state: tEnum("state", done.state)});
    }
    showNotice("");
  } catch (err) {
    if (err.code === "session_expired" || err.code === "unauthorized" || err.code === "csrf") {
      endSession("login.session_ended");
      return;
    }
    if (where === "detail") result.textContent = errorText(err);
    else showNotice(errorText(err));
  }
  // the new version arrives on the stream; the details are read again now
  if (state.selected === alarmId) loadDetail(alarmId);
}

// ---- details -------------------------------------------------------------------------------
function openDetail(alarmId) {
  state.selected = alarmId;
  state.trail = [];
  state.nearest = [];
  $("detail").hidden = false;
  $("detail-result").textContent = "";
  renderDetail();
  renderList();
  $("detail-heading").focus();
  loadDetail(alarmId);
  loadNearest(alarmId);
}

// the responders on duty, nearest to the alarm's building first (the hub measures)
async function loadNearest(alarmId) {
  if (!may("alarms.act")) return;
  try {
    const found = await api.call("GET", "/api/alarms/" + encodeURIComponent(alarmId) + "/responders");
    if (state.selected !== alarmId) return;
    state.nearest = found.responders;
    renderDispatch();
  } catch (err) {
    // no suggestion; dispatch still works without one
  }
}

function renderDispatch() {
  const doc = state.alarms.get(state.selected);
  const box = $("dispatch-box");
  const offered = doc !== undefined && allowedActions(doc).includes("dispatch");
  box.hidden = !offered;
  if (!offered) return;
  const select = $("detail-assignee");
  const keep = select.dataset.touched === "1" ? select.value : null;
  select.replaceChildren();
  const none = document.createElement("option");
  none.value = "";
  none.textContent = t("dispatch.nobody");
  select.appendChild(none);
  for (const r of state.nearest) {
    const option = document.createElement("option");
    option.value = r.id;
    option.textContent = t("dispatch.option", {name: r.name || r.id, kind: tEnum("responder", r.kind),
                                               distance: Math.round(r.distance)});
    select.appendChild(option);
  }
  const best = state.nearest[0];
  select.value = keep !== null ? keep : best ? best.id : "";
  $("dispatch-suggestion").textContent = best
    ? t("dispatch.suggested", {name: best.name || best.id, distance: Math.round(best.distance)})
    : t("dispatch.none");
  $("dispatch-suggestion").dataset.responder = best ? best.id : "";
}

function closeDetail() {
  const was = state.selected;
  state.selected = null;
  $("detail-assignee").dataset.touched = "";
  $("detail").hidden = true;
  renderList();
  if (was !== null) {
    const row = document.querySelector('#alarm-list tr[data-alarm-id="' + CSS.escape(was) + '"]');
    if (row) row.querySelector("[data-details]").focus();
  }
}

async function loadDetail(alarmId) {
  try {
    const found = await api.call("GET", "/api/alarms/" + encodeURIComponent(alarmId));
    if (state.selected !== alarmId) return;
    upsertQuiet(found.alarm);
    state.trail = found.transitions;
    renderDetail();
  } catch (err) {
    if (state.selected === alarmId) $("detail-result").textContent = errorText(err);
  }
}

function upsertQuiet(doc) {
  const known = state.alarms.get(doc.id);
  if (!known || known.seq < doc.seq) {
    state.alarms.set(doc.id, doc);
    renderList();
  }
}

function renderDetail() {
  const doc = state.alarms.get(state.selected);
  const fields = $("detail-fields");
  fields.replaceChildren();
  if (!doc) return;
  const rows = [
    [t("detail.id"), doc.id],
    [t("alarms.col.type"), tEnum("type", doc.type)],
    [t("alarms.col.severity"), tEnum("severity", doc.severity)],
    [t("alarms.col.state"), tEnum("state", doc.state)],
    [t("alarms.col.location"), location(doc)],
    [t("detail.device"), doc.device || t("location.none")],
    [t("alarms.col.raised_at"), formatTime(doc.raised_at)],
    [t("detail.updated_at"), formatTime(doc.updated_at || doc.raised_at)],
  ];
  if (may("residents.read") && doc.resident) {
    rows.splice(5, 0, [t("alarms.col.resident"), doc.resident.name || doc.resident.id]);
  }
  if (doc.assignee) {
    const who = state.responders.get(doc.assignee);
    rows.push([t("detail.assignee"), who && who.name ? who.name : doc.assignee]);
  }
  for (const [label, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    if (label === t("detail.device") && doc.device && may("devices.read")) {
      // the device's own page: its state and recent frames
      const link = document.createElement("button");
      link.type = "button";
      link.className = "linkish";
      link.id = "detail-device";
      link.textContent = value;
      link.addEventListener("click", () => device.open(doc.device, "alarms"));
      dd.appendChild(link);
    } else {
      dd.textContent = value;
    }
    fields.append(dt, dd);
  }
  const buttons = $("detail-buttons");
  buttons.replaceChildren();
  const allowed = allowedActions(doc);
  for (const action of allowed) buttons.appendChild(actionButton(action, doc.id, "detail"));
  $("detail-actions").hidden = allowed.length === 0;
  renderDispatch();
  const list = $("lifecycle-list");
  list.replaceChildren();
  for (const step of state.trail) {
    const row = document.createElement("tr");
    row.dataset.seq = step.seq;
    cell(row, formatTime(epochIso(step.at)));
    cell(row, tEnum("state", step.state));
    cell(row, step.actor);
    const sent = (doc.history || []).find((h) => h.seq === step.seq && h.assignee);
    const whom = sent ? state.responders.get(sent.assignee) : null;
    cell(row, [step.note || "", sent ? t("detail.sent_to", {name: whom && whom.name ? whom.name
      : sent.assignee}) : ""]
      .filter(Boolean).join(t("location.separator")));
    list.appendChild(row);
  }
}

// ---- start ---------------------------------------------------------------------------------
async function changeLanguage(lang) {
  await i18n.load(lang);
  i18n.apply(document);
  $("lang").value = i18n.current();
  document.title = t("app.title");
  renderWho();
  if (state.me !== null) {
    setLive($("live-status").dataset.status);
    renderList();
    renderDetail();
    plan.render();
    registry.render();
    access.render();
    faces.render();
    visitors.render();
    device.render();
  }
}

async function start() {
  bell.init((blocked) => { $("sound-banner").hidden = !blocked; });
  await changeLanguage(i18n.saved());
  $("lang").addEventListener("change", (event) => changeLanguage(event.target.value));
  $("login-form").addEventListener("submit", onLogin);
  $("password-form").addEventListener("submit", onPassword);
  $("nav-alarms").addEventListener("click", () => show("alarms"));
  $("nav-plan").addEventListener("click", () => { show("plan"); plan.load(); });
  $("nav-registry").addEventListener("click", () => { show("registry"); registry.load(); });
  $("nav-access").addEventListener("click", () => { show("access"); access.load(); });
  $("nav-faces").addEventListener("click", () => { show("faces"); faces.load(); });
  $("nav-visitors").addEventListener("click", () => { show("visitors"); visitors.load(); });
  $("detail-assignee").addEventListener("change", (event) => { event.target.dataset.touched = "1"; });
  plan.init({state, may, errorText, formatTime});
  registry.init({state, may, errorText, formatTime, openDevice: device.open,
                 sessionEnded: () => endSession("login.session_ended")});
  access.init({state, may, errorText, formatTime, openDevice: device.open});
  device.init({state, may, errorText, formatTime, show});
  faces.init({state, may, errorText, sessionEnded: () => endSession("login.session_ended")});
  visitors.init({state, may, errorText, formatTime,
                 sessionEnded: () => endSession("login.session_ended")});
  $("nav-password").addEventListener("click", () => show("password"));
  $("nav-logout").addEventListener("click", onLogout);
  $("detail-close").addEventListener("click", closeDetail);
  $("sound-enable").addEventListener("click", () => bell.unlock());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.selected !== null) closeDetail();
  });
  show("login");
  document.body.dataset.ready = "1";
}

start();
