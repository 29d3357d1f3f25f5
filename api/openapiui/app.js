// Renders /openapi.json as a list of routes grouped by tag, filterable.
"use strict";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function operationView(path, method, op) {
  const d = el("details", { "data-text": (method + " " + path + " " + (op.summary || "")).toLowerCase() },
    el("summary", {}, el("code", { class: "method" }, method.toUpperCase()), " ", el("code", {}, path), " ",
      el("span", { class: "muted" }, op.summary || "")));
  const params = op.parameters || [];
  if (params.length) {
    const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "description")));
    for (const p of params) t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, p.description || "")));
    d.append(t);
  }
  if (op.requestBody && op.requestBody.content) d.append(el("p", {}, "body: ", Object.keys(op.requestBody.content).join(", ")));
  const r = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "answer")));
  for (const [code, resp] of Object.entries(op.responses || {})) {
    r.append(el("tr", {}, el("td", {}, code), el("td", {}, (resp.description || "") + (resp.content ? " (" + Object.keys(resp.content).join(", ") + ")" : ""))));
  }
  d.append(r);
  if (op.security && op.security.length === 0) d.append(el("p", { class: "muted" }, "no token needed"));
  return d;
}

async function main() {
  const root = document.getElementById("routes");
  let doc;
  try {
    const res = await fetch("../openapi.json");
    doc = await res.json();
  } catch (err) {
    root.replaceChildren(el("p", {}, "cannot load /openapi.json: " + err));
    return;
  }
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {}).sort()) {
    for (const [method, op] of Object.entries(item)) {
      if (!op || typeof op !== "object" || !op.responses) continue;
      const tag = (op.tags && op.tags[0]) || (path.startsWith("/v1/") ? "API (/v1)" : "other");
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, method, op));
    }
  }
  root.replaceChildren();
  for (const [tag, ops] of byTag) root.append(el("section", {}, el("h2", {}, tag), ...ops));
  const filter = document.getElementById("filter");
  filter.addEventListener("input", () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const d of root.querySelectorAll("details")) {
      d.hidden = !words.every((w) => d.dataset.text.includes(w));
    }
  });
}

main();
