// Consent Ledger — the picture of a subject's consent: the timeline chart and the matrix.
//
// Draws what GET /v1/subjects/{subject}/overview answers (also carried in a dossier as
// `overview`): no rule is computed here, every band and cell is the server's decision.
// Dependency-free; SVG is built with createElementNS and ledger data is set as text or
// attribute values, never parsed as markup. Exposed as `window.LedgerChart`.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 1120;
  const LABEL = 250;
  const RIGHT = 16;
  const LANE = 24;
  const GAP = 6;
  const AXIS = 26;
  const TERMS = 22;

  const MARKS = {
    ConsentGranted: ["grant", "Granted"],
    ConsentRevoked: ["revocation", "Revoked"],
    ConsentExpired: ["expiry", "Expired"],
    EventVoided: ["void", "Voided"],
    SubjectErased: ["erasure", "Erased"],
    TermsAccepted: ["acceptance", "Terms accepted"],
    TermsPublished: ["publication", "Terms published"],
  };

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) if (child) node.append(child);
    return node;
  }

  function html(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function day(text) {
    return text ? text.slice(0, 10) : "—";
  }

  function laneLabel(lane) {
    const parts = [lane.party === "*" ? "any third party (*)" : lane.party];
    if (lane.content) parts.push(lane.content);
    if (lane.aspect !== "all") parts.push(lane.aspect);
    return parts.join(" · ");
  }

  // Tell which lanes answer differently in two views (same lanes, same order).
  function changedLanes(now, then) {
    const changed = new Set();
    if (!then) return changed;
    now.lanes.forEach((lane, i) => {
      if (JSON.stringify(lane.bands) !== JSON.stringify(then.lanes[i].bands)) changed.add(lane.key);
    });
    return changed;
  }

  // Draw one view ("as known at") of the chart. `describe(eventId)` returns the event's
  // detail nodes for the tooltip (its evidence), or null.
  function drawChart(overview, view, options) {
    const opts = options || {};
    const start = Date.parse(overview.start);
    const end = Date.parse(overview.end);
    const plotWidth = WIDTH - LABEL - RIGHT;
    const x = (text) => LABEL + ((Date.parse(text) - start) / (end - start)) * plotWidth;
    const lanes = view.lanes;
    const changed = opts.changed || new Set();
    const termsTop = AXIS + lanes.length * (LANE + GAP) + 8;
    const height = termsTop + TERMS + 28;
    const known = new Set(view.known_event_ids);
    const voided = new Set(view.voided_event_ids);
    const root = svg("svg", {
      class: "chart",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "group",
      "aria-label": `Consent over time, as known at ${view.known_at}`,
      "data-known-at": view.known_at,
    });

    // Axis: a tick each year (each quarter when the span is short).
    const axis = svg("g", { class: "axis" });
    const first = new Date(start);
    const years = (end - start) / (365.25 * 864e5);
    const stepMonths = years > 3 ? 12 : years > 1.2 ? 6 : 3;
    let tick = Date.UTC(first.getUTCFullYear(), 0, 1);
    while (tick <= end) {
      if (tick >= start) {
        const tx = x(new Date(tick).toISOString());
        const date = new Date(tick);
        const label = date.getUTCMonth() === 0 ? String(date.getUTCFullYear())
          : `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}`;
        axis.append(
          svg("line", { x1: tx, x2: tx, y1: AXIS - 6, y2: termsTop + TERMS, class: "gridline" }),
          svg("text", { x: tx + 3, y: AXIS - 10, class: "tick", text: label }));
      }
      const d = new Date(tick);
      tick = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + stepMonths, 1);
    }
    root.append(axis);

    // Lanes and their bands.
    lanes.forEach((lane, i) => {
      const top = AXIS + i * (LANE + GAP);
      const row = svg("g", { class: `lane${changed.has(lane.key) ? " changed" : ""}`, "data-lane": lane.key });
      const newPurpose = i === 0 || lanes[i - 1].purpose !== lane.purpose;
      row.append(svg("text", { x: 8, y: top + LANE / 2 + 4, class: newPurpose ? "lane-purpose" : "lane-party",
        text: newPurpose ? lane.purpose : "" }));
      row.append(svg("text", { x: LABEL - 8, y: top + LANE / 2 + 4, class: "lane-label", "text-anchor": "end",
        text: laneLabel(lane) + (changed.has(lane.key) ? " •" : "") }));
      for (const band of lane.bands) {
        const bx = x(band.from);
        const bw = Math.max(1, x(band.to) - bx);
        const tone = view.erased ? "erased" : band.allowed ? "allowed" : "denied";
        row.append(svg("rect", {
          x: bx, y: top, width: bw, height: LANE, rx: 3,
          class: `band ${tone}`,
          "data-from": band.from, "data-to": band.to,
          "data-allowed": String(band.allowed), "data-basis": band.basis,
        }, svg("title", { text: `${band.allowed ? "Allowed" : "Denied"} (${band.basis}) from ${day(band.from)} to ${day(band.to)}` })));
        if (bw > 70) {
          row.append(svg("text", { x: bx + 6, y: top + LANE / 2 + 4, class: `band-text ${tone}`,
            text: `${band.allowed ? "allowed" : "denied"} · ${band.basis}` }));
        }
      }
      root.append(row);
    });

    // The terms versions in force, beneath.
    const terms = svg("g", { class: "terms-row" });
    terms.append(svg("text", { x: LABEL - 8, y: termsTop + TERMS / 2 + 4, class: "lane-label", "text-anchor": "end", text: "terms in force" }));
    for (const band of view.terms) {
      const bx = x(band.from);
      const bw = Math.max(1, x(band.to) - bx);
      terms.append(svg("rect", { x: bx, y: termsTop, width: bw, height: TERMS, rx: 3, class: "terms-band", "data-version": band.version },
        svg("title", { text: `terms ${band.version} in force from ${day(band.from)}` })));
      terms.append(svg("text", { x: bx + 6, y: termsTop + TERMS / 2 + 4, class: "terms-text", text: `terms ${band.version}` }));
    }
    root.append(terms);

    // Markers: the events known in this view, and the terms publications.
    const marks = svg("g", { class: "markers" });
    const laneIndex = new Map(lanes.map((lane, i) => [lane.key, i]));
    const tooltip = opts.tooltip;
    const place = (node, item, words) => {
      node.setAttribute("tabindex", "0");
      node.setAttribute("role", "img");
      node.setAttribute("aria-label", words);
      node.append(svg("title", { text: words }));
      if (tooltip) {
        const show = () => tooltip.show(node, item, words);
        node.addEventListener("mouseenter", show);
        node.addEventListener("focus", show);
        node.addEventListener("mouseleave", () => tooltip.hide());
        node.addEventListener("blur", () => tooltip.hide());
        node.addEventListener("keydown", (event) => {
          if (event.key === "Escape") tooltip.hide();
          if (event.key === "Enter" && opts.onOpen) opts.onOpen(item);
        });
      }
      marks.append(node);
    };
    for (const m of overview.markers) {
      if (!known.has(m.event_id)) continue;
      const [kind, label] = MARKS[m.type] || ["other", m.type];
      const struck = voided.has(m.event_id) ? " voided" : "";
      const when = m.type === "EventVoided" || m.type === "SubjectErased" ? m.recorded_at : m.effective_at;
      const mx = x(when);
      const words = `${label}${struck ? " (voided)" : ""} · effective ${day(m.effective_at)}, recorded ${day(m.recorded_at)}` +
        (m.version ? ` · terms ${m.version}` : "");
      if (m.type === "SubjectErased") {
        const g = svg("g", { class: `marker ${kind}`, "data-event-id": m.event_id, "data-type": m.type });
        g.append(svg("line", { x1: mx, x2: mx, y1: AXIS - 4, y2: termsTop + TERMS, class: "erasure-line" }),
          svg("rect", { x: mx - 6, y: AXIS - 20, width: 12, height: 12, class: "erasure-box" }));
        place(g, m, words);
        continue;
      }
      if (m.type === "TermsAccepted") {
        const g = svg("g", { class: `marker ${kind}${struck}`, "data-event-id": m.event_id, "data-type": m.type });
        const ty = termsTop + TERMS + 2;
        g.append(svg("path", { d: `M${mx} ${ty - 8} l6 10 h-12 z` }));
        place(g, m, words);
        continue;
      }
      for (const key of m.lanes) {
        const i = laneIndex.get(key);
        if (i === undefined) continue;
        const cy = AXIS + i * (LANE + GAP) + LANE / 2;
        const g = svg("g", { class: `marker ${kind}${struck}`, "data-event-id": m.event_id, "data-type": m.type, "data-lane": key });
        if (kind === "grant") g.append(svg("circle", { cx: mx, cy, r: 6 }));
        else if (kind === "revocation") g.append(svg("rect", { x: mx - 5.5, y: cy - 5.5, width: 11, height: 11, transform: `rotate(45 ${mx} ${cy})` }));
        else if (kind === "expiry") g.append(svg("circle", { cx: mx, cy, r: 5.5, class: "hollow" }));
        else g.append(svg("path", { d: `M${mx - 5} ${cy - 5} L${mx + 5} ${cy + 5} M${mx + 5} ${cy - 5} L${mx - 5} ${cy + 5}`, class: "cross" }));
        if (struck) g.append(svg("line", { x1: mx - 9, x2: mx + 9, y1: cy, y2: cy, class: "strike" }));
        place(g, m, words);
      }
    }
    for (const p of overview.terms_publications) {
      const px = x(p.effective_from);
      if (px < LABEL) continue;
      const g = svg("g", { class: "marker publication", "data-type": "TermsPublished", "data-version": p.version });
      g.append(svg("rect", { x: px - 2, y: termsTop - 5, width: 4, height: TERMS + 10 }));
      place(g, { ...p, type: "TermsPublished" }, `Terms ${p.version} published, in force from ${day(p.effective_from)}`);
    }
    root.append(marks);

    // D, the date asked about.
    const dx = x(overview.at);
    root.append(svg("g", { class: "date-line" },
      svg("line", { x1: dx, x2: dx, y1: AXIS - 16, y2: termsTop + TERMS + 4 }),
      svg("text", dx > WIDTH - 90 ? { x: dx - 4, y: termsTop + TERMS + 20, "text-anchor": "end", text: `D ${day(overview.at)}` }
        : { x: dx + 4, y: termsTop + TERMS + 20, text: `D ${day(overview.at)}` })));
    return root;
  }

  // Draw both views with a heading each; lanes that differ are flagged.
  function drawCharts(container, overview, options) {
    container.replaceChildren();
    const [now, then] = overview.views;
    const changed = changedLanes(now, then);
    const opts = { ...(options || {}), changed };
    const heading = (text, note) => html("h3", { className: "chart-heading" }, text, note ? html("span", { className: "muted", text: note }) : "");
    container.append(heading("As the ledger knows it now", ` · ${day(now.known_at)}`),
      html("div", { className: "chart-frame", "data-view": "now" }, drawChart(overview, now, opts)));
    if (then) {
      const note = changed.size ? ` · ${changed.size} lane${changed.size === 1 ? "" : "s"} differ (•): an event recorded or voided since K changed the answer`
        : " · the same picture: nothing recorded or voided since K changes it";
      container.append(heading(`As the ledger knew it at K ${then.known_at.slice(0, 19).replace("T", " ")} UTC`, note),
        html("div", { className: "chart-frame", "data-view": "known-at" }, drawChart(overview, then, opts)));
    }
    container.append(legend());
  }

  function legend() {
    const item = (cls, text) => html("li", {}, html("span", { className: `key ${cls}` }), text);
    return html("ul", { className: "chart-legend", "aria-label": "Chart legend" },
      item("allowed", "allowed"), item("denied", "denied"), item("erased", "erased"),
      item("grant", "grant"), item("revocation", "revocation"), item("expiry", "expiry"),
      item("void", "void"), item("acceptance", "terms accepted"), item("publication", "terms published"),
      item("dline", "D, the date asked about"));
  }

  // A tooltip that follows the focused or hovered marker.
  function tooltip(node, describe) {
    return {
      show(target, item, words) {
        node.replaceChildren(html("strong", { text: words }));
        const more = describe ? describe(item) : null;
        if (more) node.append(more);
        node.hidden = false;
        // Place it just below the marker, inside the chart's host (its positioned parent).
        const box = target.getBoundingClientRect();
        const host = node.parentElement.getBoundingClientRect();
        const left = Math.min(box.left - host.left - 20, host.width - node.offsetWidth);
        node.style.left = `${Math.max(0, left)}px`;
        node.style.top = `${box.bottom - host.top + 8}px`;
      },
      hide() {
        node.hidden = true;
      },
    };
  }

  // The matrix: every purpose x party at D as known at K, and the terms in force.
  function drawMatrix(container, matrix) {
    container.replaceChildren();
    const cells = new Map(matrix.cells.map((c) => [`${c.purpose}|${c.party}`, c]));
    const head = html("tr", {}, html("th", { scope: "col", text: "Purpose" }),
      matrix.parties.map((p) => html("th", { scope: "col", text: p === "*" ? "any third party (*)" : p })));
    const rows = matrix.purposes.map((purpose) => html("tr", {},
      html("th", { scope: "row", text: purpose }),
      matrix.parties.map((party) => {
        const c = cells.get(`${purpose}|${party}`);
        return html("td", {
          className: `cell ${c.allowed ? "allowed" : "denied"}`,
          "data-purpose": purpose, "data-party": party,
          "data-allowed": String(c.allowed), "data-basis": c.basis,
          title: c.event_ids.length ? `deciding event ${c.event_ids.join(", ")}` : "no event decides",
        }, html("span", { className: "cell-verdict", text: c.allowed ? "✓ allowed" : "✕ denied" }),
        html("span", { className: "cell-basis", text: c.basis }));
      })));
    container.append(html("table", { className: "matrix", id: "matrix-table" },
      html("thead", {}, head), html("tbody", {}, rows)));
    const terms = matrix.terms_in_force;
    const aside = html("div", { className: "terms-clauses", id: "terms-clauses" });
    if (!terms) {
      aside.append(html("p", { className: "muted", text: "No terms were in force at D." }));
    } else {
      aside.append(
        html("h3", { text: `Terms ${terms.version} in force` }),
        html("p", { className: "muted", text: `effective from ${day(terms.effective_from)}, accepted effective ${day(terms.accepted_effective_at)}` +
          (terms.document_sha256 ? ` · document SHA-256 ${terms.document_sha256.slice(0, 16)}…` : "") }),
        html("table", { className: "clauses" },
          html("thead", {}, html("tr", {}, html("th", { text: "Purpose" }), html("th", { text: "Platform default" }))),
          html("tbody", {}, terms.clauses.map((c) => html("tr", {},
            html("td", { text: c.purpose }),
            html("td", { className: c.default === "granted" ? "allowed" : "denied", text: c.default }))))),
        html("p", { className: "muted small", text: "Defaults bind the platform only, and never an opt-in purpose; third parties need an explicit grant." }));
    }
    container.append(aside);
  }

  window.LedgerChart = { drawChart, drawCharts, drawMatrix, tooltip, laneLabel };
})();
