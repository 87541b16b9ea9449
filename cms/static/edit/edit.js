// The editor app: a client of the public API and nothing else. The OpenAPI document tells it
// the content types and their fields, so a type declared in cms/types.py gets its list and its
// form with no change here. No framework and no build step; plain DOM calls.
//
// The token lives in this tab's sessionStorage (never localStorage, a cookie or a URL): the API
// is bearer-token only, so no request carries ambient credentials and there is nothing to
// forge (no CSRF), and the page's CSP runs no script but this file. Sign-out removes it.
"use strict";

const TOKEN_KEY = "cms-token"; // the same key the reference page reads for draft previews
const DRAFT_PREFIX = "cms-draft:";
const LEVEL = { auditor: 1, editor: 2, admin: 3 };
const PAGE_SIZE = 20;
const state = { token: null, me: null, spec: null, types: [], byName: {}, form: null, booted: false };
let seq = 0;

// ---------------------------------------------------------------- DOM helpers
const PROPS = new Set(["value", "checked", "disabled", "readOnly", "selected", "hidden", "open"]);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

const uid = (prefix) => `${prefix}-${++seq}`;
const main = () => document.getElementById("main");
const can = (role) => Boolean(state.me) && LEVEL[state.me.role] >= LEVEL[role];
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const show = (value) =>
  value === null || value === undefined ? "(empty)"
    : typeof value === "string" ? value : JSON.stringify(value, null, 2);

function flash(message, kind = "info") {
  const el = document.getElementById("flash");
  el.className = kind;
  el.textContent = message;
}

function page(title, ...actions) {
  const heading = h("h1", { tabindex: "-1", text: title });
  const root = main();
  root.replaceChildren(h("div", { class: "titlebar" }, heading, h("div", { class: "actions" }, actions)));
  document.title = `${title} — TerraBytes CMS`;
  return { root, heading };
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, {
    dateStyle: "medium", timeStyle: "short",
  });
}

function table(caption, head, rows) {
  // a region that may scroll sideways on a phone: focusable, so the keyboard can scroll it
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, h("table", {},
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows)));
}

// A modal question (native <dialog>: focus kept inside, Escape cancels). Resolves to the
// reason typed (maybe "") or null when cancelled.
function ask(title, { confirm = "Confirm", reason = true, danger = false, extra = null } = {}) {
  return new Promise((resolve) => {
    const input = h("input", { id: uid("why"), type: "text", maxlength: "1000", autocomplete: "off" });
    const dialog = h("dialog", { "aria-labelledby": uid("dlg") });
    const heading = h("h2", { id: dialog.getAttribute("aria-labelledby"), text: title });
    const finish = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    dialog.append(h("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); finish(input.value.trim()); } },
      heading, extra,
      reason && h("p", {}, h("label", { for: input.id, text: "Why (kept in the history)" }), input),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: danger ? "danger" : "primary", text: confirm }),
        h("button", { type: "button", text: "Cancel", onclick: () => finish(null) }))));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); finish(null); });
    document.body.append(dialog);
    dialog.showModal();
    (reason ? input : dialog.querySelector("button")).focus();
  });
}

// ---------------------------------------------------------------- the API
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

// HTTP header values are bytes: send the reason as UTF-8, which is how the API reads it.
const headerText = (text) => String.fromCharCode(...new TextEncoder().encode(text));

async function api(method, path, { body, headers = {}, type = "application/json", signingIn = false } = {}) {
  const init = { method, cache: "no-cache", headers: { Accept: "application/json", ...headers } };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (body instanceof FormData) {
    init.body = body; // the browser writes the multipart boundary into Content-Type
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = type;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { message: "The server cannot be reached; nothing was saved. Your changes stay in this tab." });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text.slice(0, 300) }; }
  if (response.status === 401 && state.token && !signingIn) {
    forgetToken();
    setTimeout(() => { // after the caller has reported its own failure
      flash("Your token is no longer accepted: sign in again. Unsaved changes are kept.", "error");
      route();
    }, 0);
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, headers: response.headers, status: response.status };
}

const writeHeaders = (reason, extra = {}) => (reason ? { ...extra, "X-Change-Reason": headerText(reason) } : extra);
const total = (response) => JSON.parse(response.headers.get("X-Pagination") || "{}").total || 0;

async function listAll(type) {
  const out = [];
  for (let p = 1; p <= 20; p++) {
    const r = await api("GET", `${type.path}?ref=main&page_size=100&page=${p}&sort=slug`);
    out.push(...r.data);
    if (out.length >= total(r) || r.data.length === 0) break;
  }
  return out;
}

// ---------------------------------------------------------------- content types from the spec
function resolve(schema) {
  let s = schema || {};
  while (s.$ref) s = state.spec.components.schemas[s.$ref.split("/").pop()];
  return s;
}
const bodySchema = (op) => resolve(Object.values(op.requestBody.content)[0].schema);

function discoverTypes(spec) {
  const types = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    const m = /^\/api\/v1\/([a-z][a-z0-9-]*)$/.exec(path);
    const itemOps = spec.paths[`${path}/{slug}`];
    if (!m || !ops.get || !ops.post || !itemOps || !itemOps.patch || !itemOps.get) continue;
    const ref = itemOps.get.responses["200"].content["application/json"].schema.$ref;
    const create = bodySchema(ops.post);
    const input = bodySchema(itemOps.put || itemOps.patch);
    const sort = ops.get.parameters.find((p) => p.name === "sort");
    const required = input.required || create.required || [];
    const titleField = Object.keys(input.properties).find(
      (name) => name !== "slug" && required.includes(name) && input.properties[name].type === "string") || "slug";
    types.push({
      name: m[1], path, singular: ref.split("/").pop(), create, input,
      titleField, label: m[1].charAt(0).toUpperCase() + m[1].slice(1).replace(/-/g, " "),
      sorts: sort ? sort.schema.enum : ["slug"],
      // a file and its details (media): the form is sent as multipart/form-data
      multipart: Object.keys(ops.post.requestBody.content)[0] === "multipart/form-data",
    });
  }
  return types;
}
const titleOf = (type, item) => (item && item[type.titleField]) || (item && item.slug) || "";

// ---------------------------------------------------------------- field widgets
// Each widget: { el, get(), set(value), input (the first control, for focus and errors) }.
// `changed` is called on every edit by the person (never by set()).
function fieldWidget(name, prop, ctx) {
  const p = resolve(prop);
  const types = [].concat(p.type || []);
  const nullable = types.includes("null");
  if (types.includes("array")) {
    const items = resolve(p.items);
    if (p["x-links-to"]) return pickerWidget(p["x-links-to"], true, ctx);
    if (items.type === "object") return listWidget(items, ctx, () => objectWidget(items, ctx));
    return listWidget(items, ctx, () => {
      const w = scalarWidget(items, false, { ...ctx, id: uid(ctx.id) });
      w.input.setAttribute("aria-label", `${ctx.label}: one entry`);
      return w;
    });
  }
  if (p["x-links-to"]) return pickerWidget(p["x-links-to"], false, ctx, p["x-accepts"]);
  if (p.format === "binary") return fileWidget(p, ctx);
  if (p.format === "markdown") return markdownWidget(ctx);
  if (p.format === "date-time") return dateTimeWidget(ctx);
  if (p.format === "time-zone") return zoneWidget(ctx);
  return scalarWidget(p, nullable, ctx);
}

// A file to upload: what it is, the server decides from its bytes (its description says which).
function fileWidget(p, ctx) {
  const input = h("input", { id: ctx.id, type: "file", accept: "image/png,image/jpeg,image/webp,image/gif,application/pdf", disabled: ctx.readonly });
  const preview = h("img", { class: "media-preview", alt: "", hidden: true });
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !(file && file.type.startsWith("image/"));
    if (!preview.hidden) preview.src = URL.createObjectURL(file);
    ctx.changed();
  });
  return {
    el: h("div", {}, input, preview), input,
    get: () => input.files[0] || null,
    set: () => {}, // a file cannot be restored into a file input: it is chosen again
  };
}

// What the server measured of a media item's file, read only, with the file itself.
function mediaFacts(item) {
  const size = item.size < 1024 * 1024 ? `${Math.ceil(item.size / 1024)} KiB` : `${(item.size / 1048576).toFixed(1)} MiB`;
  const dims = item.width ? `, ${item.width} × ${item.height} pixels` : "";
  return h("figure", { class: "media-facts" },
    item.media_type.startsWith("image/") && h("img", { src: `/${item.path}`, alt: item.alt || "" }),
    h("figcaption", {}, `${item.media_type}, ${size}${dims} · `,
      h("a", { href: `/${item.path}`, text: "open the file" }),
      h("span", { class: "hint", text: ` · sha256 ${item.sha256.slice(0, 12)}…` })));
}

function scalarWidget(p, nullable, ctx) {
  const types = [].concat(p.type || []);
  let input;
  if (p.enum) {
    input = h("select", { id: ctx.id, disabled: ctx.readonly },
      nullable && h("option", { value: "", text: "(none)" }),
      p.enum.filter((v) => v !== null).map((v) => h("option", { value: String(v), text: String(v) })));
  } else if (types.includes("boolean")) {
    input = h("input", { id: ctx.id, type: "checkbox", disabled: ctx.readonly });
  } else if (types.includes("integer") || types.includes("number")) {
    input = h("input", { id: ctx.id, type: "number", inputmode: "numeric", min: p.minimum, max: p.maximum, readOnly: ctx.readonly });
  } else if ((p.maxLength || 0) > 300 && !p.format) {
    input = h("textarea", { id: ctx.id, rows: "4", maxlength: p.maxLength, readOnly: ctx.readonly });
  } else {
    const kind = p.format === "url" ? "url" : p.format === "date" ? "date" : p.format === "email" ? "email" : "text";
    input = h("input", { id: ctx.id, type: kind, maxlength: p.maxLength, readOnly: ctx.readonly });
  }
  input.addEventListener(input.tagName === "SELECT" || input.type === "checkbox" ? "change" : "input", ctx.changed);
  if (ctx.describedby) input.setAttribute("aria-describedby", ctx.describedby);
  return {
    el: input, input,
    get() {
      if (input.type === "checkbox") return input.checked;
      const v = input.value;
      if (v === "" && nullable) return null;
      if ((types.includes("integer") || types.includes("number")) && v !== "") return Number(v);
      return v;
    },
    set(value) {
      if (input.type === "checkbox") input.checked = Boolean(value);
      else input.value = value === null || value === undefined ? "" : String(value);
    },
  };
}

function markdownWidget(ctx) {
  const area = h("textarea", { id: ctx.id, rows: "8", class: "markdown", readOnly: ctx.readonly, spellcheck: "true" });
  const preview = h("div", { class: "preview", id: uid("preview") });
  const wrap = h("div", { class: "md" }, area);
  let timer = null;
  async function render() {
    try {
      const r = await api("POST", "/api/v1/render", { body: { markdown: area.value } });
      preview.innerHTML = r.data.html; // the server's own sanitiser; the CSP runs no script
    } catch (e) {
      preview.textContent = `No preview: ${e.message}`;
    }
  }
  if (can("editor")) {
    wrap.append(h("p", { class: "hint", id: uid("ph"), text: "Preview, as visitors will see it:" }), preview);
    area.setAttribute("aria-describedby", preview.id);
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(render, 300); });
  }
  area.addEventListener("input", ctx.changed);
  return {
    el: wrap, input: area,
    get: () => area.value, // the textarea keeps the text as typed; nothing trims or reflows it
    set(value) { area.value = value || ""; if (can("editor")) render(); },
  };
}

// An instant with its offset: the wall time and the UTC offset are edited side by side, and the
// visitor's own time is shown beside them, so nobody has to guess which zone a time is in.
function dateTimeWidget(ctx) {
  const local = h("input", { id: ctx.id, type: "datetime-local", step: "1", readOnly: ctx.readonly });
  const offsetId = uid("offset");
  const offset = h("input", { id: offsetId, type: "text", class: "offset", size: "6", maxlength: "6",
    pattern: "Z|[+\\-][0-9]{2}:[0-9]{2}", placeholder: "+00:00", readOnly: ctx.readonly });
  const yours = h("p", { class: "hint", "aria-live": "polite" });
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  function value() {
    if (!local.value) return null;
    const wall = local.value.length === 16 ? `${local.value}:00` : local.value;
    return `${wall}${offset.value.trim() || "Z"}`;
  }
  function explain() {
    const v = value();
    const d = v ? new Date(v) : null;
    yours.textContent = d && !Number.isNaN(d.getTime())
      ? `Time zone: UTC${offset.value || "+00:00"} · in your time zone (${here}): ${when(v)}` : "";
  }
  for (const el of [local, offset]) el.addEventListener("input", () => { explain(); ctx.changed(); });
  const el = h("div", { class: "datetime" }, local,
    h("label", { for: offsetId, class: "inline", text: "UTC offset" }), offset, yours);
  return {
    el, input: local, get: value,
    set(v) {
      const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?$/.exec(v || "");
      local.value = m ? m[1] : "";
      const mine = -new Date().getTimezoneOffset();
      const auto = `${mine < 0 ? "-" : "+"}${String(Math.floor(Math.abs(mine) / 60)).padStart(2, "0")}:${String(Math.abs(mine) % 60).padStart(2, "0")}`;
      offset.value = m ? (m[2] || "Z") : auto;
      explain();
    },
  };
}

// An IANA zone (or AoE for deadlines), typed with the browser's list of zones as suggestions.
function zoneWidget(ctx) {
  const list = h("datalist", { id: uid("zones") }, ["AoE", ...(Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [])]
    .map((z) => h("option", { value: z })));
  const input = h("input", { id: ctx.id, type: "text", list: list.id, autocomplete: "off", spellcheck: "false",
    placeholder: "America/Vancouver", readOnly: ctx.readonly });
  input.addEventListener("input", ctx.changed);
  return { el: h("div", {}, input, list), input, get: () => input.value.trim(), set(v) { input.value = v || ""; } };
}

function objectWidget(schema, ctx) {
  const parts = {};
  const box = h("div", { class: "object" });
  for (const [name, prop] of Object.entries(schema.properties)) {
    const id = uid(name);
    const w = fieldWidget(name, prop, { ...ctx, id, label: name, describedby: null });
    parts[name] = w;
    box.append(h("p", {}, h("label", { for: id, text: prop.description ? `${name} — ${prop.description}` : name }), w.el));
  }
  return {
    el: box, input: Object.values(parts)[0].input,
    get: () => Object.fromEntries(Object.entries(parts).map(([n, w]) => [n, w.get()])),
    set(value) {
      for (const [n, w] of Object.entries(parts)) {
        const v = (value || {})[n];
        w.set(v === undefined ? defaultOf(schema.properties[n]) : v);
      }
    },
  };
}

// A list of values (links, authors): each entry with its own controls and a remove button.
function listWidget(itemSchema, ctx, make) {
  const list = h("ol", { class: "entries" });
  const add = h("button", { type: "button", text: `Add ${ctx.label.replace(/s$/, "").toLowerCase()}` });
  const el = h("div", { class: "list", role: "group", "aria-labelledby": ctx.labelId }, list, !ctx.readonly && add);
  let rows = [];
  function append(value, focus) {
    const w = make();
    w.set(value);
    const row = { w, li: null };
    const remove = h("button", { type: "button", class: "small", text: "Remove",
      "aria-label": `Remove ${ctx.label.toLowerCase()} ${rows.length + 1}`,
      onclick: () => { rows = rows.filter((r) => r !== row); row.li.remove(); ctx.changed(); add.focus(); } });
    row.li = h("li", {}, w.el, !ctx.readonly && remove);
    rows.push(row);
    list.append(row.li);
    if (focus) w.input.focus();
  }
  add.addEventListener("click", () => { append(itemSchema.type === "object" ? {} : "", true); ctx.changed(); });
  return {
    el, input: add,
    get: () => rows.map((r) => r.w.get()),
    set(values) { rows = []; list.replaceChildren(); for (const v of values || []) append(v, false); },
  };
}

// Slugs of another type's items, chosen from those items: a select for one, an ordered list
// with add, move and remove for many. Saved as slugs; shown with their titles.
// x-accepts: the kind of file a media link takes ("image/*"): other files are not offered
const accepted = (item, accepts) => !accepts || (accepts.endsWith("/*")
  ? String(item.media_type || "").startsWith(accepts.slice(0, -1)) : item.media_type === accepts);

function pickerWidget(targetName, many, ctx, accepts) {
  const target = state.byName[targetName];
  const names = {};
  const files = {}; // a media item's path: the chosen image is shown beside the picker
  const preview = h("img", { class: "media-preview", alt: "", hidden: true });
  const short = (slug) => (slug.length === 64 ? `${slug.slice(0, 12)}…` : slug); // a file's sha256
  const label = (slug) => (names[slug] ? `${names[slug]} (${short(slug)})` : slug);
  const select = h("select", { id: ctx.id, disabled: ctx.readonly });
  let chosen = [];
  const list = h("ol", { class: "chosen" });
  const loaded = target ? listAll(target).then((items) => {
    for (const item of items) {
      if (!accepted(item, accepts)) continue;
      names[item.slug] = titleOf(target, item);
      if (item.path && String(item.media_type).startsWith("image/")) files[item.slug] = item;
    }
    draw();
  }).catch((e) => console.error(e)) : Promise.resolve();
  function options() {
    const slugs = Object.keys(names).filter((s) => !many || !chosen.includes(s));
    const current = many ? "" : chosen[0] || "";
    if (!many && current && !slugs.includes(current)) slugs.push(current);
    select.replaceChildren(
      h("option", { value: "", text: many ? `Choose from ${targetName}…` : "(none)" }),
      ...slugs.sort((a, b) => label(a).localeCompare(label(b))).map((s) => h("option", { value: s, text: label(s), selected: s === current })));
  }
  function draw() {
    options();
    const shown = !many && files[chosen[0]];
    preview.hidden = !shown;
    if (shown) { preview.src = `/${shown.path}`; preview.alt = shown.alt || ""; }
    if (!many) return;
    list.replaceChildren(...chosen.map((slug, i) => h("li", {}, h("span", { text: label(slug) }), !ctx.readonly && [
      i > 0 && h("button", { type: "button", class: "small", text: "Move up", "aria-label": `Move up ${label(slug)}`,
        onclick: () => { chosen.splice(i - 1, 0, chosen.splice(i, 1)[0]); draw(); ctx.changed(); } }),
      h("button", { type: "button", class: "small", text: "Remove", "aria-label": `Remove ${label(slug)}`,
        onclick: () => { chosen.splice(i, 1); draw(); ctx.changed(); select.focus(); } }),
    ])));
  }
  if (many) {
    const add = h("button", { type: "button", text: "Add", onclick: () => {
      if (select.value && !chosen.includes(select.value)) { chosen.push(select.value); draw(); ctx.changed(); }
      select.focus();
    } });
    select.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); add.click(); } });
    const el = h("div", { class: "picker" }, list, !ctx.readonly && h("div", { class: "row" }, select, add));
    if (ctx.readonly) select.id = "";
    return { el, input: ctx.readonly ? list : select, loaded, get: () => [...chosen], set(v) { chosen = [...(v || [])]; draw(); } };
  }
  select.addEventListener("change", () => { chosen = select.value ? [select.value] : []; draw(); ctx.changed(); });
  const el = accepts ? h("div", { class: "picker" }, select, preview) : select;
  return { el, input: select, loaded, get: () => chosen[0] || null, set(v) { chosen = v ? [v] : []; draw(); } };
}

// ---------------------------------------------------------------- drafts (this tab only)
const draftKey = (type, slug) => `${DRAFT_PREFIX}${type.name}/${slug || "+new"}`;
function readDraft(key) {
  try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch { return null; }
}
function drafts() {
  return Object.keys(sessionStorage).filter((k) => k.startsWith(DRAFT_PREFIX)).map((k) => k.slice(DRAFT_PREFIX.length));
}
function forgetToken() {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
}

// ---------------------------------------------------------------- screens
async function showSignIn() {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const { root, heading } = page("Sign in");
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "error", id: "token-error", role: "alert" });
  root.append(h("form", { class: "card narrow", onsubmit: async (e) => {
    e.preventDefault();
    state.token = input.value.trim();
    try {
      state.me = (await api("GET", "/api/v1/me", { signingIn: true })).data;
      sessionStorage.setItem(TOKEN_KEY, state.token);
      input.value = "";
      flash(`Signed in as ${state.me.name} (${state.me.role}).`);
      await start();
    } catch (err) {
      forgetToken();
      error.textContent = err.status === 401 ? "That token is not valid." : err.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  } },
  h("p", {}, h("label", { for: "token", text: "API token" }), input),
  h("p", { class: "hint", id: "token-hint" }, "An admin creates one with ", h("code", { text: "cms tokens create --name … --email … --role editor" }),
    ". It is kept in this tab only and forgotten when you sign out or close the tab."),
  error,
  h("button", { type: "submit", class: "primary", text: "Sign in" })));
  input.setAttribute("aria-describedby", "token-hint token-error");
  if (state.booted) heading.focus(); // a first visit starts at the top: the skip link
}

async function showDashboard() {
  const { root } = page("Dashboard");
  const cards = h("ul", { class: "cards" }, state.types.map((t) => h("li", { id: `count-${t.name}` },
    h("a", { href: `#/t/${t.name}` }, h("span", { class: "count", text: "…" }), h("span", { text: t.label })))));
  const pending = h("div", {}, h("p", { text: "Loading…" }));
  const recent = h("div", {}, h("p", { text: "Loading…" }));
  const mine = drafts();
  root.append(h("h2", { text: "Content" }), cards);
  if (mine.length) {
    root.append(h("h2", { text: "Unsaved changes in this tab" }), h("ul", {}, mine.map((d) => {
      const [type, slug] = d.split("/");
      return h("li", {}, h("a", { href: slug === "+new" ? `#/t/${type}/new` : `#/t/${type}/${slug}`, text: slug === "+new" ? `new ${type}` : d }));
    })));
  }
  root.append(h("h2", { text: "Waiting for publication" }), pending, h("h2", { text: "Recent changes" }), recent);
  await Promise.all([
    ...state.types.map(async (t) => {
      const r = await api("GET", `${t.path}?ref=main&page_size=1`);
      document.querySelector(`#count-${t.name} .count`).textContent = String(total(r));
    }),
    api("GET", "/api/v1/publish/pending").then((r) => {
      pending.replaceChildren(r.data.length
        ? h("p", {}, `${r.data.length} change${r.data.length > 1 ? "s" : ""} not yet on the public site. `,
          h("a", { href: "#/publish", text: can("admin") ? "Review and publish" : "Review them" }))
        : h("p", { text: "Everything is published." }));
    }),
    api("GET", "/api/v1/history?page_size=10").then((r) => recent.replaceChildren(historyTable(r.data))),
  ]);
}

function historyTable(entries) {
  return table("The latest commits on main", ["When", "Who", "Why", "What"], entries.map((e) => h("tr", {},
    h("td", { text: when(e.time) }), h("td", { text: e.author_name }), h("td", { text: e.reason || e.message }),
    h("td", {}, e.changes.map((c) => [h("a", { href: `#/t/${c.type}/${c.slug}`, text: `${c.type}/${c.slug}` }), ` (${c.action}) `])))));
}

async function showList(type, params) {
  const q = params.get("q") || "";
  const sort = type.sorts.includes(params.get("sort")) ? params.get("sort") : type.sorts.includes(type.titleField) ? type.titleField : "slug";
  const pageNo = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
  const { root } = page(type.label, can("editor") && h("a", { class: "button primary", href: `#/t/${type.name}/new`, text: `New ${type.singular.toLowerCase()}` }));
  const search = h("input", { id: "q", type: "search", value: q, maxlength: "300" });
  const order = h("select", { id: "sort" }, type.sorts.map((s) => h("option", { value: s, selected: s === sort,
    text: s.startsWith("-") ? `${s.slice(1)}, descending` : `${s}, ascending` })));
  const go = (p) => { location.hash = `#/t/${type.name}?${new URLSearchParams({ q: search.value.trim(), sort: order.value, page: String(p) })}`; };
  root.append(h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); go(1); } },
    h("label", { for: "q", text: `Search by ${type.titleField}` }), search,
    h("label", { for: "sort", text: "Sort by" }), order,
    h("button", { type: "submit", text: "Search" })));
  const query = new URLSearchParams({ ref: "main", page: String(pageNo), page_size: String(PAGE_SIZE), sort });
  if (q) query.set("q", q);
  const r = await api("GET", `${type.path}?${query}`);
  const count = total(r);
  const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
  root.append(table(`${count} ${type.label.toLowerCase()}${q ? ` matching “${q}”` : ""}`,
    [type.titleField, "slug", "Actions"], r.data.map((item) => h("tr", {},
      h("td", {}, h("a", { href: `#/t/${type.name}/${item.slug}`, text: titleOf(type, item) })),
      h("td", {}, h("code", { text: item.slug })),
      h("td", { class: "row-actions" }, can("editor") && h("button", { type: "button", class: "small danger",
        text: "Delete", "aria-label": `Delete ${titleOf(type, item)}`, onclick: () => deleteItem(type, item) }))))));
  root.append(h("nav", { class: "pages", "aria-label": "Pages" },
    pageNo > 1 && h("button", { type: "button", text: "Previous page", onclick: () => go(pageNo - 1) }),
    h("span", { text: ` Page ${pageNo} of ${pages} ` }),
    pageNo < pages && h("button", { type: "button", text: "Next page", onclick: () => go(pageNo + 1) })));
}

async function deleteItem(type, item) {
  const why = await ask(`Delete ${titleOf(type, item)}?`, { confirm: "Delete", danger: true });
  if (why === null) return;
  try {
    await api("DELETE", `${type.path}/${item.slug}`, { headers: writeHeaders(why, { "If-Match": `"${item.etag}"` }) });
    sessionStorage.removeItem(draftKey(type, item.slug));
    flash(`Deleted ${type.name}/${item.slug}.`, "ok");
    if (location.hash.startsWith(`#/t/${type.name}/`)) location.hash = `#/t/${type.name}`;
    else route();
  } catch (e) {
    const refs = e.body.referrers;
    flash(refs ? `Not deleted: still referred to by ${refs.join(", ")}.` : `Not deleted: ${e.message}`, "error");
  }
}

// ---------------------------------------------------------------- the item form
async function showItem(type, slug) {
  let item = null;
  if (slug) item = (await api("GET", `${type.path}/${slug}?ref=main`)).data;
  const key = draftKey(type, slug);
  const draft = readDraft(key);
  const schema = slug ? type.input : type.create;
  const readonly = !can("editor");
  const title = slug ? `${type.singular}: ${titleOf(type, item)}` : `New ${type.singular.toLowerCase()}`;
  const { root } = page(title);
  const form = {
    type, slug, key, readonly, widgets: {}, touched: new Set(), conflicts: {},
    required: schema.required || [],
    base: draft ? draft.base : Object.fromEntries(Object.keys(schema.properties).map((n) => [n, item ? item[n] : undefined])),
    etag: draft ? draft.etag : item && item.etag,
  };
  state.form = form;
  const fields = h("div", { class: "fields" });
  for (const [name, prop] of Object.entries(schema.properties)) {
    const id = `f-${name}`;
    const labelId = `l-${name}`;
    const hintId = `h-${name}`;
    const error = h("p", { class: "error", id: `e-${name}` });
    const ctx = { id, label: name, labelId, readonly, describedby: `${hintId} e-${name}`, changed: () => touch(form, name) };
    const widget = fieldWidget(name, prop, ctx);
    const required = (schema.required || []).includes(name);
    const wrapper = h("div", { class: "field", id: `field-${name}` },
      h("label", { for: widget.input.id || undefined, id: labelId }, name.replace(/_/g, " "),
        required && h("span", { class: "required", text: " (required)" })),
      h("p", { class: "hint", id: hintId, text: prop.description || "" }),
      h("p", { class: "blame", id: `b-${name}` }),
      h("div", { class: "conflict-slot" }),
      widget.el, error);
    widget.input.setAttribute("aria-describedby", `${hintId} b-${name} e-${name}`);
    form.widgets[name] = { ...widget, wrapper, error };
    // untouched fields show the item as it is now (a restored draft may have started earlier)
    const shown = item ? item[name] : undefined;
    widget.set(shown === undefined ? defaultOf(prop) : shown);
    fields.append(wrapper);
  }
  if (draft) {
    for (const [name, value] of Object.entries(draft.changes)) {
      if (form.widgets[name]) { form.widgets[name].set(value); form.touched.add(name); }
    }
    if (draft.conflicts) showConflicts(form, draft.conflicts);
  }
  const reason = h("input", { id: "reason", type: "text", maxlength: "1000", autocomplete: "off", value: draft ? draft.reason || "" : "" });
  reason.addEventListener("input", () => saveDraft(form));
  form.reason = reason;
  const restored = draft && h("div", { class: "notice", role: "status" },
    h("p", { text: `Unsaved changes from ${when(draft.saved)} were restored${slug && item && draft.etag !== item.etag ? "; the item changed since, and saving merges your changes with the new version" : ""}.` }),
    h("button", { type: "button", text: "Discard my changes", onclick: () => { sessionStorage.removeItem(key); route(); } }));
  const formEl = h("form", { class: "item", novalidate: true, onsubmit: (e) => { e.preventDefault(); save(form); } },
    restored, item && item.path && item.sha256 && mediaFacts(item), fields,
    !readonly && h("div", { class: "savebar" },
      h("label", { for: "reason", text: "Why (kept in the history)" }), reason,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", text: slug ? "Save" : "Create" }),
        slug && can("admin") && h("button", { type: "button", text: "Publish this item", onclick: () => publishItem(type, slug) }),
        slug && h("button", { type: "button", class: "danger", text: "Delete", onclick: () => deleteItem(type, item) }))));
  if (readonly) formEl.prepend(h("p", { class: "notice", text: "Read only: your token has the auditor role." }));
  const layout = h("div", { class: "item-layout" }, formEl);
  root.append(layout);
  if (slug) {
    const aside = h("aside", { class: "history", "aria-labelledby": "history-title" }, h("h2", { id: "history-title", text: "History" }));
    layout.append(aside);
    await Promise.all([showBlame(type, slug), showHistory(type, slug, aside)]);
  }
}

function defaultOf(prop) {
  const p = resolve(prop);
  if ("default" in p) return p.default;
  const types = [].concat(p.type || []);
  return types.includes("array") ? [] : types.includes("null") ? null : p.enum ? p.enum[0] : "";
}

function touch(form, name) {
  form.touched.add(name);
  const w = form.widgets[name];
  w.error.textContent = "";
  w.input.removeAttribute("aria-invalid");
  saveDraft(form);
}

function changes(form) {
  const out = {};
  if (!form.slug) { // a new item: everything the form shows, except blanks the server may fill
    for (const [name, w] of Object.entries(form.widgets)) {
      const value = w.get();
      if (value !== "" || form.required.includes(name)) out[name] = value;
    }
    return out;
  }
  for (const name of form.touched) {
    const value = form.widgets[name].get();
    if (!form.slug || !same(value, form.base[name])) out[name] = value;
  }
  return out;
}

const unsaved = (form) => (form.slug ? Object.keys(changes(form)).length > 0 : form.touched.size > 0);

function saveDraft(form) {
  const pending = changes(form);
  if (!unsaved(form) && !form.reason.value && !Object.keys(form.conflicts).length) {
    sessionStorage.removeItem(form.key);
    return;
  }
  for (const [name, value] of Object.entries(pending)) if (value instanceof File) delete pending[name];
  sessionStorage.setItem(form.key, JSON.stringify({
    etag: form.etag, base: form.base, changes: pending, reason: form.reason.value,
    conflicts: form.conflicts, saved: new Date().toISOString(),
  }));
}

function clearErrors(form) {
  for (const w of Object.values(form.widgets)) { w.error.textContent = ""; w.input.removeAttribute("aria-invalid"); }
}

function showErrors(form, errors) {
  let first = null;
  const flat = (v) => (Array.isArray(v) ? v.map(flat).join(" ") : typeof v === "object" && v ? Object.entries(v).map(([k, x]) => `${k}: ${flat(x)}`).join("; ") : String(v));
  for (const [name, messages] of Object.entries(errors.json || errors.multipart || {})) {
    const w = form.widgets[name];
    if (!w) continue;
    w.error.textContent = flat(messages);
    w.input.setAttribute("aria-invalid", "true");
    first = first || w.input;
  }
  const other = Object.entries(errors).filter(([where]) => where !== "json" && where !== "multipart").map(([where, v]) => `${where}: ${flat(v)}`);
  if (first) first.focus();
  return other.join(" ");
}

async function save(form) {
  const { type, slug } = form;
  const body = changes(form);
  clearErrors(form);
  if (slug && !Object.keys(body).length) { flash("Nothing changed: nothing to save."); return; }
  const why = form.reason.value.trim();
  try {
    if (!slug) {
      const r = await api("POST", type.path, { body: type.multipart ? formData(body) : body, headers: writeHeaders(why) });
      sessionStorage.removeItem(form.key);
      flash(`Created ${type.name}/${r.data.slug}.`, "ok");
      location.hash = `#/t/${type.name}/${r.data.slug}`;
      return;
    }
    const r = await api("PATCH", `${type.path}/${slug}`, {
      body, type: "application/merge-patch+json", headers: writeHeaders(why, { "X-Merge-Base": `"${form.etag}"` }),
    });
    sessionStorage.removeItem(form.key);
    const merged = r.headers.get("X-Merged") === "true";
    await route();
    flash(merged ? "Saved, and merged with changes someone else made meanwhile." : "Saved.", "ok");
  } catch (e) {
    if (e.status === 422) {
      const other = showErrors(form, e.body.errors || {});
      flash(`Not saved: ${other || (e.body.errors ? "some fields need attention." : e.message)}`, "error");
    } else if ((e.status === 409 && e.body.conflicts) || (e.status === 412 && e.body.current)) {
      rebase(form, e.body, body);
    } else {
      flash(`Not saved: ${e.message}`, "error");
    }
  }
}

function formData(body) {
  const out = new FormData();
  for (const [name, value] of Object.entries(body)) {
    if (value instanceof File) out.append(name, value, value.name);
    else if (value !== null && value !== undefined) out.append(name, String(value));
  }
  return out;
}

// The item moved and the merge could not combine both edits (409), or the version we started
// from is unknown (412): take theirs as the new base, keep every field the person changed, and
// show each clash three ways until they pick or edit. Nothing is saved until they save again.
function rebase(form, body, mine) {
  const theirs = body.current;
  let conflicts = body.conflicts;
  if (!conflicts) {
    conflicts = {};
    for (const [name, value] of Object.entries(mine)) {
      if (!same(theirs[name], form.base[name]) && !same(theirs[name], value)) conflicts[name] = { base: form.base[name], theirs: theirs[name], yours: value };
    }
  }
  form.base = Object.fromEntries(Object.keys(form.widgets).map((n) => [n, theirs[n]]));
  form.etag = body.etag || theirs.etag;
  for (const [name, w] of Object.entries(form.widgets)) if (!form.touched.has(name)) w.set(theirs[name]);
  showConflicts(form, conflicts);
  saveDraft(form);
  showBlame(form.type, form.slug).catch(() => {}); // who set theirs, and why
  const n = Object.keys(conflicts).length;
  flash(n ? `Not saved: someone else changed ${n === 1 ? "a field" : `${n} fields`} you changed too. Choose what to keep, then save again.`
    : "Not saved: the item changed meanwhile. Your changes are kept on top of the new version: review and save again.", "error");
  const first = Object.keys(conflicts)[0];
  if (first) form.widgets[first].wrapper.querySelector(".conflict button").focus();
}

function showConflicts(form, conflicts) {
  form.conflicts = { ...conflicts };
  for (const [name, c] of Object.entries(conflicts)) {
    const w = form.widgets[name];
    if (!w) continue;
    const done = () => { delete form.conflicts[name]; slot.replaceChildren(); saveDraft(form); w.input.focus(); };
    const slot = w.wrapper.querySelector(".conflict-slot");
    slot.replaceChildren(h("div", { class: "conflict", role: "group", "aria-label": `Conflict on ${name}` },
      h("p", {}, h("strong", { text: "Conflict: " }), "someone else changed this field since you started."),
      h("div", { class: "three" },
        h("div", {}, h("h3", { text: "When you started" }), h("pre", { text: show(c.base) })),
        h("div", {}, h("h3", { text: "Theirs (saved now)" }), h("pre", { class: "theirs", text: show(c.theirs) })),
        h("div", {}, h("h3", { text: "Yours" }), h("pre", { class: "yours", text: show(c.yours) }))),
      h("div", { class: "actions" },
        h("button", { type: "button", text: "Keep theirs", onclick: () => { w.set(c.theirs); form.touched.delete(name); done(); } }),
        h("button", { type: "button", text: "Keep mine", onclick: () => { w.set(c.yours); form.touched.add(name); done(); } }),
        h("span", { class: "hint", text: "or edit the field below, then save." }))));
  }
}

async function showBlame(type, slug) {
  const r = await api("GET", `${type.path}/${slug}/blame?ref=main`);
  for (const [name, b] of Object.entries(r.data.fields)) {
    const el = document.getElementById(`b-${name}`);
    if (el) el.textContent = `Last set by ${b.author_name}, ${when(b.time)}${b.reason ? `: “${b.reason}”` : ` (${b.message})`}`;
  }
}

async function showHistory(type, slug, aside) {
  const r = await api("GET", `${type.path}/${slug}/history?ref=main&page_size=100`);
  const versions = r.data;
  const label = (v) => `${when(v.time)} · ${v.author_name} · ${v.commit.slice(0, 7)}`;
  const pick = (id, selected) => h("select", { id }, versions.map((v, i) => h("option", { value: v.commit, selected: i === selected, text: label(v) })));
  const from = pick("diff-from", Math.min(1, versions.length - 1));
  const to = pick("diff-to", 0);
  const out = h("div", { id: "diff", "aria-live": "polite" });
  aside.append(...[
    h("ol", { class: "versions" }, versions.map((v, i) => h("li", {},
      h("p", {}, h("strong", { text: v.action }), ` by ${v.author_name}, `, h("time", { datetime: v.time, text: when(v.time) })),
      h("p", { class: "why", text: v.reason || v.message }),
      i > 0 && can("editor") && v.etag && h("button", { type: "button", class: "small", text: "Restore this version",
        "aria-label": `Restore this version: ${label(v)}`, onclick: () => revert(type, slug, v) })))),
    versions.length > 1 && h("form", { class: "compare", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const d = (await api("GET", `${type.path}/${slug}/diff?ref=main&from=${from.value}&to=${to.value}`)).data;
        out.replaceChildren(diffView(d));
      } catch (err) { out.textContent = err.message; }
    } },
    h("h3", { text: "Compare versions" }),
    h("p", {}, h("label", { for: "diff-from", text: "From" }), from),
    h("p", {}, h("label", { for: "diff-to", text: "To" }), to),
    h("button", { type: "submit", text: "Show differences" })),
    out].filter(Boolean));
}

function diffView(d) {
  if (!d.operations.length) return h("p", { text: "No differences." });
  return h("div", {}, table("Changed fields", ["Field", "Change", "New value"], d.operations.map((op) => h("tr", {},
    h("td", { text: op.path.replace(/^\//, "") }), h("td", { text: op.op }), h("td", {}, h("pre", { text: op.op === "remove" ? "" : show(op.value) }))))),
  h("details", {}, h("summary", { text: "The file's diff" }), h("pre", { class: "patch", text: d.patch })));
}

async function revert(type, slug, version) {
  const why = await ask(`Restore the version of ${when(version.time)} by ${version.author_name}?`, { confirm: "Restore" });
  if (why === null) return;
  try {
    const current = (await api("GET", `${type.path}/${slug}?ref=main`)).data;
    await api("POST", `${type.path}/${slug}/revert`, { body: { to: version.commit }, headers: writeHeaders(why, { "If-Match": `"${current.etag}"` }) });
    sessionStorage.removeItem(draftKey(type, slug));
    await route();
    flash("Restored: a new commit brings the old version back.", "ok");
  } catch (e) { flash(`Not restored: ${e.message}`, "error"); }
}

// ---------------------------------------------------------------- publishing
async function publishItem(type, slug) {
  const why = await ask(`Publish ${type.name}/${slug} to the public site?`, { confirm: "Publish" });
  if (why === null) return;
  try {
    const r = await api("POST", `${type.path}/${slug}/publish`, { headers: writeHeaders(why) });
    flash(r.data.changed ? `Published ${type.name}/${slug}.` : "Already published: nothing to do.", "ok");
    if (location.hash === "#/publish") route();
  } catch (e) { flash(`Not published: ${e.message}`, "error"); }
}

async function showPublishing() {
  const admin = can("admin");
  const { root } = page("Publishing",
    h("a", { class: "button", href: document.body.dataset.site, text: "Open the published site" }),
    admin && h("button", { type: "button", class: "primary", id: "publish-all", text: "Publish everything", onclick: async () => {
      const why = await ask("Publish every pending change to the public site?", { confirm: "Publish everything" });
      if (why === null) return;
      try {
        const r = await api("POST", "/api/v1/publish", { headers: writeHeaders(why) });
        await route();
        flash(r.data.changed ? "Published everything." : "Nothing to publish.", "ok");
      } catch (e) { flash(`Not published: ${e.message}`, "error"); }
    } }));
  if (!admin) root.append(h("p", { class: "notice", text: "Only admins publish; you can review what is pending." }));
  const [pending, releases] = await Promise.all([api("GET", "/api/v1/publish/pending"), api("GET", "/api/v1/releases")]);
  root.append(h("h2", { text: "Pending changes" }));
  if (!pending.data.length) root.append(h("p", { text: "Everything is published." }));
  for (const p of pending.data) {
    root.append(h("section", { class: "card pending", "aria-label": `${p.type}/${p.slug}` },
      h("h3", {}, h("a", { href: `#/t/${p.type}/${p.slug}`, text: `${p.type}/${p.slug}` }), ` — ${p.action}`),
      p.operations.length > 0 && table("Field by field", ["Field", "Change", "New value"], p.operations.map((op) => h("tr", {},
        h("td", { text: op.path.replace(/^\//, "") }), h("td", { text: op.op }), h("td", {}, h("pre", { text: op.op === "remove" ? "" : show(op.value) }))))),
      admin && h("button", { type: "button", text: "Publish", "aria-label": `Publish ${p.type}/${p.slug}`,
        onclick: () => publishItem(state.byName[p.type], p.slug) })));
  }
  root.append(h("h2", { text: "Releases" }),
    releases.data.length ? h("ul", {}, releases.data.map((r) => h("li", {}, h("strong", { text: r.name }), ` — ${when(r.time)} by ${r.tagger_name}${r.message ? `: ${r.message}` : ""}`)))
      : h("p", { text: "No release yet." }));
  if (admin) {
    const name = h("input", { id: "release-name", type: "text", required: true, maxlength: "100", pattern: "[A-Za-z][A-Za-z0-9._\\-]*", autocomplete: "off" });
    const message = h("textarea", { id: "release-message", rows: "2", maxlength: "5000" });
    root.append(h("form", { class: "card", onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api("POST", "/api/v1/releases", { body: { name: name.value.trim(), message: message.value } });
        await route();
        flash(`Release ${name.value.trim()} created.`, "ok");
      } catch (err) { flash(`No release: ${err.message}`, "error"); }
    } }, h("h3", { text: "New release of the published site" }),
    h("p", {}, h("label", { for: "release-name", text: "Name (e.g. v1 or 2025-final)" }), name),
    h("p", {}, h("label", { for: "release-message", text: "Notes" }), message),
    h("button", { type: "submit", text: "Create release" })));
  }
}

// ---------------------------------------------------------------- routing
async function route() {
  state.form = null;
  if (!state.token) { await showSignIn(); return; }
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  const type = parts[0] === "t" ? state.byName[parts[1]] : null;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${parts.slice(0, 2).join("/")}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (!parts.length) await showDashboard();
    else if (parts[0] === "publish" && parts.length === 1) await showPublishing();
    else if (type && parts.length === 2) await showList(type, new URLSearchParams(query || ""));
    else if (type && parts.length === 3) await showItem(type, parts[2] === "new" ? null : parts[2]);
    else page("Not found").root.append(h("p", {}, "Nothing here. ", h("a", { href: "#/", text: "Back to the dashboard" })));
  } catch (e) {
    if (!state.token) return;
    page(e.status === 404 ? "Not found" : "Something went wrong").root.append(h("p", { class: "error", text: e.message }));
  }
  const heading = main().querySelector("h1");
  if (state.booted && heading && !main().contains(document.activeElement)) heading.focus();
}

async function start() {
  const nav = document.getElementById("nav");
  nav.replaceChildren(h("a", { href: "#/", text: "Dashboard" }),
    ...state.types.map((t) => h("a", { href: `#/t/${t.name}`, text: t.label })),
    h("a", { href: "#/publish", text: "Publishing" }),
    h("a", { href: document.body.dataset.site, text: "Public site" }));
  nav.hidden = false;
  document.getElementById("who").textContent = `${state.me.name} (${state.me.role})`;
  document.getElementById("signout").hidden = false;
  await route();
}

async function signOut() {
  const unsaved = drafts();
  if (unsaved.length) {
    const ok = await ask(`Sign out and discard unsaved changes in ${unsaved.join(", ")}?`, { confirm: "Discard and sign out", reason: false, danger: true });
    if (ok === null) return;
  }
  for (const key of Object.keys(sessionStorage)) if (key.startsWith(DRAFT_PREFIX)) sessionStorage.removeItem(key);
  forgetToken();
  flash("Signed out: this tab no longer holds your token.");
  location.hash = "#/";
  await route();
}

async function boot() {
  document.getElementById("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (e) => {
    if (state.form && unsaved(state.form)) e.preventDefault(); // the browser asks first
  });
  try {
    state.spec = await (await fetch(document.body.dataset.spec, { cache: "no-cache" })).json();
    state.types = discoverTypes(state.spec);
    state.byName = Object.fromEntries(state.types.map((t) => [t.name, t]));
  } catch {
    page("Something went wrong").root.append(h("p", { class: "error", text: "The API's description could not be loaded." }));
    return;
  }
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (state.token) {
    try { state.me = (await api("GET", "/api/v1/me")).data; } catch { forgetToken(); }
  }
  if (state.me) await start(); else await showSignIn();
  state.booted = true;
}

boot();
