// One device (docs/console.md, "Device"): what the plan knows of it (state,
// battery, last seen, case, open alarms; GET /api/site/plan), what it last
// reported (GET /api/devices/<id>) and its newest accepted frames
// (GET /api/devices/<id>/events). Read only: nothing here changes the hub.
import * as api from "./api.js";
import * as i18n from "./i18n.js";

const {t, tEnum} = i18n;
const $ = (id) => document.getElementById(id);
const EVENTS = 20;

let ctx = null;       // {state, may, errorText, formatTime, show} from app.js
let current = null;   // the device shown
let back = "alarms";  // the view to return to
let last = null;      // {device, reported, events}

export function init(context) {
  ctx = context;
  $("device-back").addEventListener("click", () => {
    current = null;
    ctx.show(back);
  });
  $("device-refresh").addEventListener("click", () => load());
}

export function reset() {
  current = null;
  last = null;
  $("device-fields").replaceChildren();
  $("device-events").replaceChildren();
}

export function open(deviceId, from) {
  current = deviceId;
  back = from || document.body.dataset.view || "alarms";
  last = null;
  ctx.show("device");
  $("device-heading").textContent = t("device.heading", {id: deviceId});
  $("device-heading").focus();
  render();
  load();
}

// a frame's values in one line: "open: true, battery_percent: 87"
function summary(values) {
  return Object.entries(values || {})
    .filter(([, v]) => v !== null && typeof v !== "object")
    .map(([k, v]) => k + ": " + v).join(", ");
}

async function load() {
  const deviceId = current;
  if (deviceId === null) return;
  $("device-result").textContent = "";
  try {
    const planDoc = await api.call("GET", "/api/site/plan");
    let reported = null;
    try {
      reported = await api.call("GET", "/api/devices/" + encodeURIComponent(deviceId));
    } catch (err) {
      if (err.status !== 404) throw err;  // 404: it never reported
    }
    const found = await api.call("GET", "/api/devices/" + encodeURIComponent(deviceId) +
                                 "/events?limit=" + EVENTS);
    if (current !== deviceId) return;
    last = {device: planDoc.devices.find((d) => d.id === deviceId) || null, reported,
            events: found.events};
    render();
  } catch (err) {
    if (current === deviceId) $("device-result").textContent = ctx.errorText(err);
  }
}

function yesNo(flag) {
  return flag === null || flag === undefined ? t("device.unknown") : flag ? t("reg.yes") : t("device.no");
}

export function render() {
  if (ctx === null || current === null || $("view-device").hidden) return;
  $("device-heading").textContent = t("device.heading", {id: current});
  const fields = $("device-fields");
  fields.replaceChildren();
  const events = $("device-events");
  events.replaceChildren();
  if (last === null) return;
  const d = last.device;
  const state = last.reported ? last.reported.state || {} : {};
  const rows = [];
  if (d === null) {
    rows.push([t("reg.field.status"), t("device.not_in_site")]);
  } else {
    rows.push([t("reg.field.kind"), tEnum("reg.device_kind", d.kind)],
              [t("device.place"), d.flat || d.entrance || t("location.none")],
              [t("reg.field.status"), tEnum("plan.device.status", d.status)],
              [t("reg.field.battery"), d.battery_percent === null || d.battery_percent === undefined
                ? t("device.unknown")
                : t("reg.battery_value", {percent: d.battery_percent}) +
                  (d.battery_low ? t("location.separator") + t("reg.battery_low") : "")],
              [t("reg.field.last_seen"), d.last_seen
                ? ctx.formatTime(new Date(d.last_seen * 1000).toISOString()) : t("reg.never")],
              [t("device.tamper"), yesNo(d.tamper)],
              [t("device.alarms"), (d.alarms || []).length
                ? t("device.open_alarms", {count: d.alarms.length}) : t("device.no_alarms")]);
  }
  if (state.door_open !== undefined && state.door_open !== null) {
    rows.push([t("device.door"), state.door_open ? t("device.door_open") : t("device.door_closed")]);
  }
  for (const [label, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    fields.append(dt, dd);
  }
  $("device-no-events").hidden = last.events.length > 0;
  for (const e of last.events) {
    const row = document.createElement("tr");
    row.dataset.counter = e.counter;
    for (const text of [ctx.formatTime(new Date(e.received_at * 1000).toISOString()),
                        tEnum("device.event", e.type), String(e.counter), summary(e.values)]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    events.appendChild(row);
  }
}
