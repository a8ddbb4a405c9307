// The access log (docs/console.md, "Access log"): the face entrances'
// decisions the hub records (GET /api/access-log) and the smart locks' ACCESS
// and FORCED events (GET /api/locks, GET /api/locks/<id>/log), newest first,
// filtered by entrance or lock, person and outcome in the page. Read only.
import * as api from "./api.js";
import * as i18n from "./i18n.js";

const {t, tEnum} = i18n;
const $ = (id) => document.getElementById(id);
const LIMIT = 200;

// access_log kinds (docs/face_access.md, "Events and alarms") -> outcome
const FACE = {face_access: "allowed", face_access_denied: "denied",
              face_visitor_attempt: "visitor", face_watchlist: "watchlist"};
const OUTCOMES = ["allowed", "denied", "visitor", "watchlist", "forced"];

let ctx = null;     // {state, may, errorText, formatTime, openDevice} from app.js
let entries = [];   // [{at, source, where, device, person, outcome, reason, method}]

export function init(context) {
  ctx = context;
  for (const id of ["access-where", "access-outcome"]) $(id).addEventListener("change", render);
  $("access-person").addEventListener("input", render);
  $("access-refresh").addEventListener("click", () => load());
}

export function reset() {
  entries = [];
  $("access-list").replaceChildren();
}

function fromFace(entry) {
  const p = entry.payload || {};
  return {at: entry.at, source: "face", where: p.entrance || "", device: null,
          person: p.person_id || "", name: p.name || "", outcome: FACE[entry.kind],
          reason: p.reason || "", method: "face"};
}

function fromLock(lock, entry) {
  const v = entry.values || {};
  const outcome = entry.type === "forced" ? "forced" : v.outcome === "unlocked" ? "allowed" : "denied";
  const reason = entry.type === "forced" ? v.forced : v.reason === "ok" ? "" : v.reason || "";
  return {at: entry.received_at, source: "lock", where: lock.entrance || lock.flat || lock.device,
          device: lock.device, person: v.credential || (v.user ? "#" + v.user : ""), name: "",
          outcome, reason, method: v.method || ""};
}

export async function load() {
  if (ctx === null || ctx.state.me === null) return;
  $("access-result").textContent = "";
  try {
    const face = await api.call("GET", "/api/access-log?limit=" + LIMIT);
    const found = face.entries.filter((e) => FACE[e.kind] !== undefined).map(fromFace);
    let locks = [];
    try {
      locks = (await api.call("GET", "/api/locks")).locks;
    } catch (err) {
      if (err.status !== 404) throw err;  // a site without smart locks has no lock routes
    }
    for (const lock of locks) {
      const log = await api.call("GET", "/api/locks/" + encodeURIComponent(lock.device) +
                                 "/log?limit=" + LIMIT);
      for (const e of log.entries) {
        if (e.type === "access" || e.type === "forced") found.push(fromLock(lock, e));
      }
    }
    entries = found.sort((a, b) => b.at - a.at);
    fillPlaces();
    render();
  } catch (err) {
    $("access-result").textContent = ctx.errorText(err);
  }
}

function fillPlaces() {
  const select = $("access-where");
  const keep = select.value;
  select.replaceChildren();
  const all = document.createElement("option");
  all.value = "";
  all.textContent = t("access.all_places");
  select.appendChild(all);
  for (const where of [...new Set(entries.map((e) => e.where))].sort()) {
    const option = document.createElement("option");
    option.value = where;
    option.textContent = where;
    select.appendChild(option);
  }
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
}

function fillOutcomes() {
  const select = $("access-outcome");
  const keep = select.value;
  select.replaceChildren();
  for (const code of ["", ...OUTCOMES]) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = code === "" ? t("access.all_outcomes") : tEnum("access.outcome", code);
    select.appendChild(option);
  }
  select.value = keep;
}

export function render() {
  if (ctx === null || ctx.state.me === null) return;
  if ($("access-outcome").options.length !== OUTCOMES.length + 1 ||
      $("access-outcome").options[0].textContent !== t("access.all_outcomes")) fillOutcomes();
  if ($("access-where").options.length === 0 ||
      $("access-where").options[0].textContent !== t("access.all_places")) fillPlaces();
  const where = $("access-where").value;
  const outcome = $("access-outcome").value;
  const person = $("access-person").value.trim().toLowerCase();
  const shown = entries.filter((e) => (!where || e.where === where)
    && (!outcome || e.outcome === outcome)
    && (!person || e.person.toLowerCase().includes(person) || e.name.toLowerCase().includes(person)));
  const body = $("access-list");
  body.replaceChildren();
  for (const e of shown) {
    const row = document.createElement("tr");
    row.dataset.outcome = e.outcome;
    row.dataset.source = e.source;
    row.className = "outcome-" + e.outcome;
    const cells = [ctx.formatTime(new Date(e.at * 1000).toISOString()),
                   tEnum("access.source", e.source), null,
                   e.name ? e.name + " (" + e.person + ")" : e.person,
                   e.method ? tEnum("access.method", e.method) : "",
                   tEnum("access.outcome", e.outcome),
                   e.reason ? tEnum("access.reason", e.reason) : ""];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement("td");
      td.className = ["a-at", "a-source", "a-where", "a-person", "a-method", "a-outcome", "a-reason"][i];
      if (i === 2 && e.device !== null) {
        const link = document.createElement("button");
        link.type = "button";
        link.className = "linkish";
        link.textContent = e.where;
        link.addEventListener("click", () => ctx.openDevice(e.device, "access"));
        td.appendChild(link);
      } else {
        td.textContent = i === 2 ? e.where : text;
      }
      row.appendChild(td);
    }
    body.appendChild(row);
  }
  $("access-count").textContent = t("access.count", {shown: shown.length, total: entries.length});
  $("access-empty").hidden = shown.length > 0;
}
