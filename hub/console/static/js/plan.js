// The site plan (docs/console.md, "The plan"): buildings from GET /api/site/plan
// drawn as SVG in plan coordinates, each opening to its floors and flats, with
// switchable layers (rental flats, residents living alone, devices by state,
// open alarms, responders). Open alarms and responders' positions come live
// from the alarm stream (app.js hands them over); the plan document itself is
// read again shortly after an alarm changes, for the devices' states.
import * as api from "./api.js";
import * as i18n from "./i18n.js";

const {t, tEnum} = i18n;
const NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const CLOSED = new Set(["resolved", "cancelled", "false_alarm"]);
const REFRESH_MS = 300;

let ctx = null;          // {state, may, errorText, formatTime} from app.js
let doc = null;          // the last GET /api/site/plan
let selected = null;     // the building whose floors are shown
let timer = null;

function el(tag, attrs, parent) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function html(tag, className, text, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

export function init(context) {
  ctx = context;
  for (const box of document.querySelectorAll("#plan-layers input[data-layer]")) {
    box.addEventListener("change", () => {
      $("plan-svg").classList.toggle("hide-" + box.dataset.layer, !box.checked);
    });
  }
  $("building-close").addEventListener("click", () => openBuilding(null));
  // one listener on the drawing (its buildings are drawn anew on every change)
  const building = (event) => {
    const g = event.target.closest ? event.target.closest("g.bld") : null;
    return g ? g.dataset.building : null;
  };
  $("plan-svg").addEventListener("click", (event) => {
    const id = building(event);
    if (id !== null) openBuilding(id);
  });
  $("plan-svg").addEventListener("keydown", (event) => {
    const id = building(event);
    if (id !== null && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      openBuilding(id);
    }
  });
  $("plan-image-form").addEventListener("submit", upload);
}

export function reset() {
  doc = null;
  selected = null;
  if (timer !== null) { window.clearTimeout(timer); timer = null; }
  $("plan-svg").replaceChildren();
  $("building-floors").replaceChildren();
  $("responder-list").replaceChildren();
}

export async function load() {
  try {
    doc = await api.call("GET", "/api/site/plan");
    for (const r of doc.responders) {
      const live = ctx.state.responders.get(r.id);
      if (!live || (r.at && (!live.at || live.at < r.at))) ctx.state.responders.set(r.id, r);
    }
  } catch (err) {
    return;  // the stream's own error handling shows the connection state
  }
  render();
}

// an alarm changed: draw the alarms now, read the devices' states a little later
export function alarmsChanged() {
  if (doc === null) return;
  render();
  if (timer === null) timer = window.setTimeout(() => { timer = null; load(); }, REFRESH_MS);
}

export function responderChanged() {
  if (doc !== null) { drawResponders(); renderResponderList(); }
}

export function buildingCentre(buildingId) {
  if (doc === null) return null;
  const b = doc.buildings.find((x) => x.id === buildingId);
  return b ? b.centre : null;
}

function openAlarms() {
  return [...ctx.state.alarms.values()].filter((a) => !CLOSED.has(a.state));
}

function bbox(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

export function render() {
  if (doc === null) return;
  const svg = $("plan-svg");
  // the drawing is made anew: a building that had the focus gets it back
  const focused = document.activeElement && document.activeElement.closest
    ? document.activeElement.closest("#plan-svg g.bld") : null;
  const refocus = focused ? focused.dataset.building : null;
  const {width, height} = doc.size;
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("aria-label", t("plan.svg_label", {site: ctx.state.site.name || ""}));
  svg.replaceChildren();
  $("plan-auto").hidden = !doc.auto_layout;
  $("plan-image-form").hidden = !ctx.may("site.plan");
  el("rect", {x: 0, y: 0, width, height, class: "ground"}, svg);
  if (doc.image) {
    el("image", {href: doc.image + "?v=" + Date.now(), x: 0, y: 0, width, height,
                 preserveAspectRatio: "xMidYMid meet", class: "plan-image"}, svg);
  }
  const alarms = openAlarms();
  const flatAlarms = new Map();
  const deviceAlarms = new Map();
  const buildingAlarms = new Map();
  for (const a of alarms) {
    for (const [map, key] of [[flatAlarms, a.flat], [deviceAlarms, a.device],
                              [buildingAlarms, a.building]]) {
      if (!key) continue;
      if (!map.has(key)) map.set(key, []);
      map.get(key).push(a);
    }
  }
  const raised = (list) => (list || []).some((a) => a.state === "raised");
  const devices = new Map(doc.devices.map((d) => [d.id, d]));
  const unit = Math.max(width, height) / 100;
  for (const b of doc.buildings) {
    const g = el("g", {class: "bld", "data-building": b.id, tabindex: 0, role: "button"}, svg);
    const flatsCount = b.floors.reduce((n, f) => n + f.flats.length, 0);
    g.setAttribute("aria-label", t("plan.building_label", {
      building: b.name, flats: flatsCount, alarms: (buildingAlarms.get(b.id) || []).length}));
    const shape = el("polygon", {points: b.outline.map((p) => p.join(",")).join(" "),
                                 class: "bld-shape"}, g);
    if (buildingAlarms.has(b.id)) {
      shape.classList.add("l-alarms", "in-alarm");
      if (raised(buildingAlarms.get(b.id))) shape.classList.add("is-raised");
    }
    if (selected === b.id) shape.classList.add("is-selected");
    const [x0, y0, x1, y1] = bbox(b.outline);
    const label = el("text", {x: x0 + unit * 0.8, y: y0 + unit * 2.6, class: "bld-name",
                              "font-size": unit * 2.2}, g);
    label.textContent = b.name;
    // floors from the top down, flats left to right, inside the outline's box
    const floors = [...b.floors].reverse();
    const cols = Math.max(1, ...floors.map((f) => f.flats.length));
    const pad = unit * 0.8;
    const top = y0 + unit * 3.6;
    const cw = (x1 - x0 - 2 * pad) / cols;
    const ch = floors.length ? (y1 - top - pad) / floors.length : 0;
    floors.forEach((floor, row) => {
      floor.flats.forEach((flat, col) => {
        const fx = x0 + pad + col * cw + cw * 0.06;
        const fy = top + row * ch + ch * 0.08;
        const fw = cw * 0.88;
        const fh = ch * 0.84;
        const cell = el("rect", {x: fx, y: fy, width: fw, height: fh, class: "flat",
                                 "data-flat": flat.id}, g);
        el("title", {}, cell).textContent = t("plan.flat_label", {flat: flat.id});
        if (flat.rental) el("rect", {x: fx, y: fy, width: fw, height: fh, class: "l-rental",
                                     "data-flat": flat.id}, g);
        if (flat.lives_alone) {
          el("circle", {cx: fx + Math.min(fw, fh) * 0.22, cy: fy + Math.min(fw, fh) * 0.22,
                        r: Math.min(fw, fh) * 0.16, class: "l-alone", "data-flat": flat.id}, g);
        }
        const here = flatAlarms.get(flat.id);
        if (here) {
          const over = el("rect", {x: fx, y: fy, width: fw, height: fh,
                                   class: "l-alarms flat-alarm", "data-flat": flat.id}, g);
          if (raised(here)) over.classList.add("is-raised");
        }
        flat.devices.forEach((id, i) => {
          const d = devices.get(id);
          if (!d) return;
          const r = Math.min(fw, fh) * 0.11;
          const dot = el("circle", {cx: fx + fw - r * 1.6 - i * r * 2.6, cy: fy + fh - r * 1.6, r,
                                    class: "l-devices dev " + deviceClass(d, deviceAlarms),
                                    "data-device": d.id, "data-status": d.status}, g);
          el("title", {}, dot).textContent = d.id + t("location.separator") + tEnum("plan.device.status", d.status);
        });
      });
    });
  }
  el("g", {id: "plan-responders", class: "l-responders"}, svg);
  drawResponders();
  if (refocus !== null) {
    const again = svg.querySelector('g.bld[data-building="' + CSS.escape(refocus) + '"]');
    if (again) again.focus();
  }
  renderBuilding();
  renderResponderList();
}

function deviceClass(d, deviceAlarms) {
  const here = deviceAlarms.get(d.id);
  if (here) return here.some((a) => a.state === "raised") ? "st-alarm is-raised" : "st-alarm";
  if (d.tamper) return "st-tamper";
  if (d.battery_low) return "st-battery";
  return "st-" + d.status;
}

function drawResponders() {
  const layer = $("plan-responders");
  if (!layer || doc === null) return;
  const unit = Math.max(doc.size.width, doc.size.height) / 100;
  const known = new Map();
  for (const g of layer.querySelectorAll("[data-responder]")) known.set(g.dataset.responder, g);
  for (const r of ctx.state.responders.values()) {
    if (r.x === null || r.x === undefined) continue;
    let g = known.get(r.id);
    if (!g) {
      g = el("g", {class: "responder", "data-responder": r.id}, layer);
      el("circle", {r: unit * 1.4, cx: 0, cy: 0}, g);
      const label = el("text", {x: unit * 1.8, y: unit * 0.7, "font-size": unit * 1.9}, g);
      label.textContent = "";
      el("title", {}, g);
    }
    known.delete(r.id);
    g.setAttribute("transform", "translate(" + r.x + "," + r.y + ")");
    g.dataset.x = r.x;
    g.dataset.y = r.y;
    g.classList.toggle("off-duty", !r.on_duty);
    g.querySelector("text").textContent = r.name || tEnum("responder", r.kind);
    g.querySelector("title").textContent = (r.name || r.id) + t("location.separator") + tEnum("responder", r.kind);
  }
  for (const g of known.values()) g.remove();
}

function renderResponderList() {
  const list = $("responder-list");
  list.replaceChildren();
  const all = [...ctx.state.responders.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("responders-empty").hidden = all.length > 0;
  for (const r of all) {
    const li = html("li", "responder-item" + (r.on_duty ? "" : " off-duty"), undefined, list);
    li.dataset.responder = r.id;
    html("strong", "", r.name || r.id, li);
    html("span", "kind", t("location.separator") + tEnum("responder", r.kind), li);
    if (!r.on_duty) html("span", "badge", t("plan.responder.off_duty"), li);
    html("span", "hint", t("location.separator")
    + (r.at ? ctx.formatTime(r.at) : t("plan.responder.no_position")), li);
  }
}

function openBuilding(buildingId) {
  selected = buildingId;
  render();
  if (buildingId !== null) $("building-heading").focus();
}

function renderBuilding() {
  const box = $("building-floors");
  box.replaceChildren();
  const b = doc && selected !== null ? doc.buildings.find((x) => x.id === selected) : null;
  $("building-heading").hidden = b === null;
  $("building-hint").hidden = b !== null;
  $("building-close").hidden = b === null;
  if (b === null) return;
  $("building-heading").textContent = t("plan.building.heading", {building: b.name});
  const alarmed = new Set(openAlarms().map((a) => a.flat).filter(Boolean));
  for (const floor of [...b.floors].reverse()) {
    const section = html("section", "floor", undefined, box);
    section.dataset.floor = floor.floor === null ? "" : floor.floor;
    html("h3", "", floor.floor === null ? t("plan.floor_unknown")
      : t("plan.floor", {floor: floor.floor}), section);
    const ul = html("ul", "flats", undefined, section);
    for (const flat of floor.flats) {
      const li = html("li", "flat-item", undefined, ul);
      li.dataset.flat = flat.id;
      html("strong", "", t("plan.flat_label", {flat: flat.id}), li);
      if (flat.rental) html("span", "badge b-rental", t("plan.flat.rental"), li);
      if (flat.lives_alone) html("span", "badge b-alone", t("plan.flat.alone"), li);
      if (alarmed.has(flat.id)) html("span", "badge b-alarm", t("plan.flat.alarm"), li);
      html("span", "hint", " " + t("plan.flat.devices", {count: flat.devices.length}), li);
      if (flat.residents && flat.residents.length) {
        html("span", "residents", " " + flat.residents.map((r) => r.name).join(", "), li);
      }
    }
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $("plan-image-file").files[0];
  const result = $("plan-image-result");
  if (!file) return;
  try {
    await api.upload("POST", "/api/site/plan-image", file, file.type);
    result.textContent = t("plan.image.done");
    await load();
  } catch (err) {
    result.textContent = ctx.errorText(err);
  }
}
