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
  list("organizers", w.organizers, (p) => [p.name, p.affiliation].filter(Boolean).join(", "));
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

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("preview").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("cms-token", document.getElementById("token").value.trim());
    load();
  });
  load();
});
