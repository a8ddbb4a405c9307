// Message catalogues (static/i18n/<lang>.json): every text the pages show.
// Elements name their text with data-i18n (text), data-i18n-aria-label and
// data-i18n-placeholder; code asks t("key", {vars}) with a literal key, or
// tEnum("state", value) for the hub's own codes (states, types, severities).
export const LANGS = ["zh-CN", "en"];
const STORE_KEY = "anju.console.lang";
let lang = LANGS[0];
let messages = {};

export function current() { return lang; }

export function saved() {
  const value = window.localStorage.getItem(STORE_KEY);
  return LANGS.includes(value) ? value : LANGS[0];  // Chinese unless chosen otherwise
}

export async function load(wanted) {
  const chosen = LANGS.includes(wanted) ? wanted : LANGS[0];
  const response = await fetch("/console/i18n/" + chosen + ".json", {credentials: "same-origin"});
  if (!response.ok) throw new Error("catalogue " + chosen + ": HTTP " + response.status);
  messages = await response.json();
  lang = chosen;
  window.localStorage.setItem(STORE_KEY, chosen);
  document.documentElement.lang = chosen;
}

export function t(key, vars) {
  const text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
  return text.replace(/\{(\w+)\}/g, (all, name) =>
    vars && vars[name] !== undefined && vars[name] !== null ? String(vars[name]) : all);
}

// A code the hub sends (state "raised", type "smoke"): its text, else the code itself.
export function tEnum(group, code, vars) {
  const key = group + "." + code;
  return Object.prototype.hasOwnProperty.call(messages, key) ? t(key, vars) : String(code);
}

export function has(group, code) {
  return Object.prototype.hasOwnProperty.call(messages, group + "." + code);
}

export function apply(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  }
}
