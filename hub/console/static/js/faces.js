// Face enrolment (docs/console.md, "Faces"): the persons the face entrances
// know (GET /api/face/persons), enrolment from photos chosen on this computer
// (POST /api/face/persons, each photo base64 in JSON) and removal (DELETE).
// A photo the face pipeline refuses is named with its reason, translated
// (docs/face_access.md, "Enrollment"); nothing is stored unless every photo
// passes. The photos are sent to the hub only, never kept in the page.
import * as api from "./api.js";
import * as i18n from "./i18n.js";

const {t, tEnum} = i18n;
const $ = (id) => document.getElementById(id);

let ctx = null;       // {state, may, errorText, sessionEnded} from app.js
let persons = null;   // the last GET, or null (face access not configured: `disabled`)
let disabled = false;
let removing = null;

export function init(context) {
  ctx = context;
  $("face-form").addEventListener("submit", onEnrol);
  $("face-photos").addEventListener("change", () => { $("face-err-photos").hidden = true; });
}

export function reset() {
  persons = null;
  disabled = false;
  removing = null;
  $("face-list").replaceChildren();
  $("face-result").textContent = "";
}

export async function load() {
  if (ctx === null || ctx.state.me === null) return;
  $("face-form").hidden = !ctx.may("faces.write");
  try {
    persons = (await api.call("GET", "/api/face/persons")).persons;
    disabled = false;
  } catch (err) {
    if (err.code === "face_disabled") {
      disabled = true;
      persons = [];
    } else {
      $("face-result").textContent = ctx.errorText(err);
      return;
    }
  }
  render();
}

export function render() {
  if (ctx === null || ctx.state.me === null || persons === null) return;
  $("face-disabled").hidden = !disabled;
  $("face-form").hidden = disabled || !ctx.may("faces.write");
  const body = $("face-list");
  body.replaceChildren();
  const write = ctx.may("faces.write");
  for (const p of persons) {
    const row = document.createElement("tr");
    row.dataset.person = p.id;
    for (const text of [p.id, p.name, tEnum("face.list", p.list),
                        (p.entrances || []).map((e) => e === "*" ? t("face.every_entrance") : e)
                          .join(t("location.separator")),
                        String(p.embeddings)]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    const cell = document.createElement("td");
    if (write) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "danger";
      remove.dataset.remove = p.id;
      remove.textContent = removing === p.id ? t("reg.remove_confirm") : t("reg.remove");
      remove.addEventListener("click", () => onRemove(p.id));
      cell.appendChild(remove);
    }
    row.appendChild(cell);
    body.appendChild(row);
  }
  $("face-empty").hidden = persons.length > 0 || disabled;
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function fieldError(field, text) {
  const slot = $("face-err-" + field);
  slot.textContent = text;
  slot.hidden = false;
  $("face-" + field).setAttribute("aria-invalid", "true");
  $("face-" + field).focus();
}

async function onEnrol(event) {
  event.preventDefault();
  for (const field of ["id", "name", "photos"]) {
    $("face-err-" + field).hidden = true;
    $("face-" + field).removeAttribute("aria-invalid");
  }
  $("face-result").textContent = "";
  const id = $("face-id").value.trim();
  const name = $("face-name").value.trim();
  const files = [...$("face-photos").files];
  if (!id) { fieldError("id", t("face.required")); return; }
  if (!name) { fieldError("name", t("face.required")); return; }
  if (files.length === 0) { fieldError("photos", t("face.pick_photo")); return; }
  const entrances = $("face-entrances").value.split(/[,\s]+/).filter(Boolean);
  const body = {id, name, list: $("face-list-kind").value, replace: $("face-replace").checked,
                entrances: entrances.length ? entrances : ["*"],
                photos: await Promise.all(files.map(base64))};
  $("face-submit").disabled = true;
  $("face-result").textContent = t("face.checking");
  try {
    const done = await api.call("POST", "/api/face/persons", body);
    $("face-result").textContent = t("face.enrolled", {id: done.id, count: done.embeddings});
    $("face-photos").value = "";
    await load();
  } catch (err) {
    $("face-result").textContent = "";
    if (err.status === 401) { ctx.sessionEnded(); return; }
    if (err.code === "refused" || err.code === "bad_image") {
      const index = err.body.photo;
      const file = files[index] ? files[index].name : "";
      const reason = err.code === "bad_image" ? "bad_image" : err.body.reason;
      fieldError("photos", t("face.photo_refused", {
        number: index === undefined ? 1 : index + 1, file,
        reason: i18n.has("face.reason", reason) ? tEnum("face.reason", reason) : reason}));
    } else {
      $("face-result").textContent = t("reg.refused", {detail: err.detail || ctx.errorText(err)});
    }
  } finally {
    $("face-submit").disabled = false;
  }
}

async function onRemove(id) {
  if (removing !== id) {
    removing = id;
    render();
    const again = document.querySelector('#face-list button[data-remove="' + CSS.escape(id) + '"]');
    if (again) again.focus();
    return;
  }
  removing = null;
  try {
    await api.call("DELETE", "/api/face/persons/" + encodeURIComponent(id));
    $("face-result").textContent = t("face.deleted", {id});
    await load();
  } catch (err) {
    if (err.status === 401) { ctx.sessionEnded(); return; }
    $("face-result").textContent = ctx.errorText(err);
  }
}
