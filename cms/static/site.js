// The reference frontend: one fetch of the public site bundle, rendered with plain DOM calls.
// Markdown arrives already rendered and sanitised by the CMS (?render=html).
"use strict";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// Dates are shown as the event wrote them, in its own time zone, not the visitor's.
function parts(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(iso || "");
  if (!m) return null;
  return { y: +m[1], mo: +m[2], d: +m[3], h: m[4] === undefined ? null : +m[4], mi: m[5] };
}
function day(p) { return `${MONTHS[p.mo - 1]} ${p.d}, ${p.y}`; }
function clock(p) {
  const h12 = ((p.h + 11) % 12) + 1;
  return `${h12}:${p.mi} ${p.h < 12 ? "AM" : "PM"}`;
}
function when(start, end) {
  const s = parts(start), e = parts(end);
  if (!s) return "";
  if (!e || s.h === null) return day(s);
  const sameDay = s.y === e.y && s.mo === e.mo && s.d === e.d;
  return `${day(s)} ${clock(s)} — ${sameDay ? "" : day(e) + " "}${clock(e)}`;
}

function text(id, value) { document.getElementById(id).textContent = value || ""; }
function html(id, value) { document.getElementById(id).innerHTML = value || ""; }
function list(id, items, label) {
  const ul = document.getElementById(id);
  ul.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.textContent = label(item);
    return li;
  }));
}

async function load() {
  const params = new URLSearchParams(location.search);
  const ref = params.get("ref") === "main" ? "main" : "published";
  const headers = {};
  const form = document.getElementById("preview");
  if (ref === "main") {
    form.hidden = false;
    const token = sessionStorage.getItem("cms-token");
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  // a preview link (?preview=<token>) shows what it was made for: drafts, or one commit
  const preview = params.get("preview");
  const url = preview
    ? `${document.body.dataset.api}?render=html&preview=${encodeURIComponent(preview)}`
    : `${document.body.dataset.api}?render=html&ref=${ref}`;
  const response = await fetch(url, { headers });
  const status = document.getElementById("status");
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    status.textContent = body.message || `The site could not be loaded (${response.status}).`;
    status.className = "error";
    return;
  }
  const site = await response.json();
  if (preview) status.textContent = "Preview: this content may not be published yet.";
  const w = site.workshops[0];
  if (!w) { status.textContent = "No workshop is published yet."; return; }
  document.title = w.title;
  text("title", w.title);
  const author = w.author ? w.author.name : "";
  const announced = parts(w.announced_on);
  text("announcement", [announced ? day(announced) : "", author].filter(Boolean).join(" · "));
  html("abstract", w.abstract_html);
  text("date", when(w.start, w.end));
  text("event", w.event);
  text("location", w.location);
  html("introduction", w.introduction_html);
  html("motivation", w.motivation_html);
  html("initiative", w.initiative_html);
  const media = Object.fromEntries((site.media || []).map((m) => [m.slug, m]));
  document.getElementById("organizers").replaceChildren(...w.organizers.map((p) => {
    const li = el("li", "", "person");
    const photo = picture(media[p.photo]);
    if (photo) li.append(photo);
    li.append(el("span", [p.name, p.affiliation].filter(Boolean).join(", ")));
    return li;
  }));
  const talks = document.getElementById("talks");
  if (site.talks.length) {
    const ul = document.createElement("ul");
    ul.replaceChildren(...site.talks.map((t) => {
      const li = document.createElement("li");
      li.textContent = [t.title, t.speakers.map((s) => s.name).join(", ")].filter(Boolean).join(" — ");
      return li;
    }));
    talks.replaceChildren(ul);
  } else {
    talks.textContent = w.invited_talks || "TBA";
  }
  const mine = (items) => (items || []).filter((x) => x.workshop === w.slug);
  const people = Object.fromEntries(site.people.map((p) => [p.slug, p]));
  schedule(mine(site.sessions), people);
  papers(mine(site.papers));
  callForPapers(mine(site["calls-for-papers"])[0]);
  sponsors(mine(site.sponsors));
  list("references", site.references, (r) => [r.key, r.title].filter(Boolean).join(": "));
  const website = document.getElementById("website");
  if (w.website) {
    const a = document.createElement("a");
    a.href = w.website;
    a.textContent = w.website_note || w.website;
    website.replaceChildren(a);
  } else {
    website.textContent = w.website_note || "";
  }
  text("revision", site.revision.slice(0, 12));
  status.hidden = !preview;  // a preview says so above the content
  document.getElementById("workshop").hidden = false;
}

function el(tag, textContent, className) {
  const e = document.createElement(tag);
  if (textContent) e.textContent = textContent;
  if (className) e.className = className;
  return e;
}
// A published image (a media item) as <img>, with its own text alternative; null otherwise.
function picture(item) {
  if (!item || !item.path || !item.media_type.startsWith("image/")) return null;
  const img = document.createElement("img");
  img.src = `/${item.path}`;
  img.alt = item.alt;
  if (item.width) { img.width = item.width; img.height = item.height; }
  img.loading = "lazy";
  return img;
}
function reveal(id, shown) { document.getElementById(id).hidden = !shown; }

// The schedule in the venue's own time (as stored, with the zone's name), and the visitor's
// own time beside it when their zone differs.
function schedule(sessions, people) {
  reveal("schedule-section", sessions.length > 0);
  if (!sessions.length) return;
  sessions.sort((a, b) => new Date(a.start) - new Date(b.start));
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zone = sessions[0].zone;
  text("schedule-zone", `Times in the venue's time zone (${zone}).`);
  const local = { hour: "numeric", minute: "2-digit", timeZoneName: "short" };
  document.getElementById("schedule").replaceChildren(...sessions.map((s) => {
    const li = el("li");
    const time = el("time", `${clock(parts(s.start))} — ${clock(parts(s.end))}`, "slot");
    time.dateTime = s.start;
    const yours = `${new Date(s.start).toLocaleTimeString([], local)} — ${new Date(s.end).toLocaleTimeString([], local)}`;
    time.title = `Your time (${here}): ${yours}`;
    li.append(time, el("strong", s.title), el("span", [s.kind.replace(/-/g, " "), s.room].filter(Boolean).join(" · "), "meta"));
    if (here !== s.zone) li.append(el("span", `your time: ${yours}`, "meta yours"));
    const name = (slug) => (people[slug] ? people[slug].name : slug);  // one level is expanded
    const inside = [...(s.talks || []).map((t) => [t.title, (t.speakers || []).map(name).join(", ")]),
      ...(s.papers || []).map((p) => [p.title, (p.authors || []).map((a) => a.name).join(", ")])];
    if (inside.length) {
      const ul = el("ul");
      ul.append(...inside.map(([title, who]) => el("li", [title, who].filter(Boolean).join(" — "))));
      li.append(ul);
    }
    return li;
  }));
}

function papers(items) {
  reveal("papers-section", items.length > 0);
  items.sort((a, b) => a.title.localeCompare(b.title));
  document.getElementById("papers").replaceChildren(...items.map((p) => {
    const li = el("li");
    li.append(el("strong", p.title), el("span", (p.authors || []).map((a) => a.name).join(", "), "meta"),
      el("span", p.presentation, "badge"));
    for (const link of p.links || []) {
      const a = el("a", link.label);
      a.href = link.url;
      a.rel = "noopener";
      li.append(" ", a);
    }
    return li;
  }));
}

// Deadlines count down in days; an AoE deadline says so (it is the last place on earth to
// reach that date, UTC-12).
function callForPapers(call) {
  reveal("cfp-section", Boolean(call));
  if (!call) return;
  text("cfp-title", call.title);
  const box = document.getElementById("cfp");
  box.replaceChildren();
  if (call.introduction_html) { const d = el("div"); d.innerHTML = call.introduction_html; box.append(d); }
  if (call.topics.length) {
    const ul = el("ul");
    ul.append(...call.topics.map((t) => el("li", t)));
    box.append(el("p", "Topics include:"), ul);
  }
  const format = [call.page_limit ? `${call.page_limit} pages` : "", call.page_limit_note].filter(Boolean).join(" · ");
  if (format) box.append(el("p", `Format: ${format}`));
  if (call.submission_url) {
    const a = el("a", "Submit");
    a.href = call.submission_url;
    box.append(el("p")).append(a);
  }
  const dl = el("dl", "", "facts deadlines");
  for (const d of call.deadlines) {
    const left = Math.ceil((new Date(d.due) - Date.now()) / 86400000);
    const due = parts(d.due);
    const count = left > 1 ? `in ${left} days` : left === 1 ? "tomorrow" : left === 0 ? "today" : "passed";
    dl.append(el("dt", d.name), el("dd", `${day(due)} ${clock(due)} ${d.zone === "AoE" ? "AoE" : d.zone} (${count})`));
  }
  if (call.deadlines.length) box.append(dl);
}

function sponsors(items) {
  reveal("sponsors-section", items.length > 0);
  const order = ["platinum", "gold", "silver", "bronze", "supporter"];
  items.sort((a, b) => order.indexOf(a.tier) - order.indexOf(b.tier) || a.name.localeCompare(b.name));
  document.getElementById("sponsors").replaceChildren(...items.map((s) => {
    const li = el("li", "", "sponsor");
    const name = s.url ? el("a", s.name) : el("span", s.name);
    if (s.url) name.href = s.url;
    const logo = picture(s.logo);  // expanded in the bundle: the media item itself
    if (logo) li.append(logo);
    const label = el("span");
    label.append(name, el("span", ` ${s.tier}`, "meta"));
    li.append(label);
    return li;
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("preview").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("cms-token", document.getElementById("token").value.trim());
    load();
  });
  load();
});
