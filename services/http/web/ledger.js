// Consent Ledger — the legal team's pages: sign in, a subject's timeline, a question, a dossier.
//
// Every datum comes from the /v1 API, with the API key the user pasted. The key lives in
// this tab's sessionStorage only and travels as an `Authorization: Bearer` header; it is
// never put in a URL or a cookie. Ledger data is inserted with textContent, never as
// markup (the page's Content-Security-Policy also forbids inline script).
"use strict";

(function () {
  const KEY_SLOT = "consent-ledger.api-key";
  const PAGE_SIZE = 1000;

  const BASIS_MEANINGS = {
    "explicit-grant": "An explicit grant by the subject decides.",
    "explicit-revocation": "An explicit revocation by the subject decides.",
    "terms-default": "No explicit choice applies: the default of the terms in force decides.",
    "no-terms-accepted": "No explicit choice applies and no terms were in force.",
    "opt-in-required": "An opt-in purpose or a third party, with no applicable explicit grant.",
    "grant-expired": "The grant that would decide had expired by then.",
    erased: "The subject was erased: denied everything.",
  };
  const EVENT_LABELS = {
    ConsentGranted: ["Granted", "granted"],
    ConsentRevoked: ["Revoked", "revoked"],
    ConsentExpired: ["Expired", "expired"],
    TermsAccepted: ["Terms accepted", "terms"],
    TermsPublished: ["Terms published", "terms"],
    EventVoided: ["Voided", "void"],
    SubjectErased: ["Erased", "erased"],
  };
  const FALLBACK_PURPOSES = [
    "ai-generative-training", "ai-training", "ai-inference", "data-mining",
    "personalization", "content-identification", "fraud-detection",
  ];

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function storedKey() {
    return sessionStorage.getItem(KEY_SLOT);
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(path) {
    const key = storedKey();
    if (!key) throw new ApiError(401, { detail: "no API key is stored for this tab" });
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, { detail: "the ledger could not be reached" });
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // A clear sentence for each way a call can fail, plus the server's own detail.
  function explain(error, what) {
    const problem = error.problem || {};
    // The server's detail, unless it only repeats its title (the sentence below says that).
    const same = (a, b) => String(a || "").replace(/[.\s]+$/, "").toLowerCase() === String(b || "").replace(/[.\s]+$/, "").toLowerCase();
    const detail = problem.detail && !same(problem.detail, problem.title) ? problem.detail : "";
    switch (error.status) {
      case 401:
        return { text: "Your API key was not accepted. Sign in again with a valid key.", detail, signIn: true };
      case 403:
        return { text: `Not allowed: this key's role may not ${what}. It needs an auditor or admin key.`, detail, signIn: true };
      case 404:
        return { text: detail ? `Not found: ${detail}.` : "Not found.", detail: "" };
      case 409:
        return { text: detail ? `Refused: ${detail}.` : "Refused: the ledger's state conflicts with the request.", detail: "" };
      case 422:
        return { text: detail ? `The question is not valid: ${detail}.` : "The question is not valid.", detail: "" };
      case 503:
        return { text: "The ledger's store is unavailable just now; try again shortly.", detail };
      case 0:
        return { text: "The ledger could not be reached.", detail };
      default:
        return { text: `The ledger answered with an error (HTTP ${error.status}).`, detail };
    }
  }

  function showMessage(node, message, kind) {
    node.replaceChildren();
    node.className = `message ${kind || "error"}`;
    node.append(el("strong", { text: message.text }));
    if (message.detail) node.append(" ", el("span", { className: "detail", text: message.detail }));
    if (message.signIn) {
      const back = `/ui/?subject=${encodeURIComponent(currentSubject() || "")}`;
      node.append(" ", el("a", { href: back, text: "Sign in with another key" }));
    }
    node.hidden = false;
  }

  function when(text) {
    if (!text) return "—";
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$/.exec(text);
    if (!m) return text;
    return m[2] === "00:00:00" ? `${m[1]} 00:00 UTC` : `${m[1]} ${m[2]} UTC`;
  }

  // A date on one line and its UTC time of day, quieter, on the next.
  function timeCell(text) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(text || "");
    if (!m) return el("td", { className: "time", text: when(text) });
    return el("td", { className: "time" },
      el("time", { datetime: text, title: text },
        el("span", { className: "day", text: m[1] }),
        el("span", { className: "clock", text: `${m[2] === "00:00:00" ? "00:00" : m[2]} UTC` })));
  }

  function shortId(id) {
    return id ? id.slice(0, 8) : "";
  }

  function eventLink(id, label) {
    return el("a", { href: `#event-${id}`, className: "event-link", title: id, text: label || shortId(id) });
  }

  function currentSubject() {
    const match = /^\/ui\/subjects\/([^/]+)$/.exec(location.pathname);
    if (match) return decodeURIComponent(match[1]);
    return new URLSearchParams(location.search).get("subject");
  }

  function openSubject(subject) {
    location.assign(`/ui/subjects/${encodeURIComponent(subject.trim())}`);
  }

  // ------------------------------------------------------------------ sign-in page

  function signInPage() {
    const form = document.getElementById("sign-in-form");
    const keyInput = document.getElementById("api-key");
    const subjectInput = document.getElementById("subject");
    const message = document.getElementById("sign-in-message");
    subjectInput.value = currentSubject() || "";
    if (storedKey()) document.getElementById("key-held").hidden = false;
    (storedKey() ? subjectInput : keyInput).focus();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = keyInput.value.trim();
      const subject = subjectInput.value.trim();
      if (!key && !storedKey()) {
        showMessage(message, { text: "Paste an API key to sign in." });
        return;
      }
      if (!subject) {
        showMessage(message, { text: "Name the subject (artist id) whose timeline to open." });
        return;
      }
      if (key) sessionStorage.setItem(KEY_SLOT, key);
      keyInput.value = "";
      openSubject(subject);
    });
  }

  // ------------------------------------------------------------------ timeline page

  function timelinePage() {
    const subject = currentSubject();
    const state = { subject, events: [], byId: new Map() };
    document.getElementById("subject-title").textContent = subject;
    document.title = `${subject} · Timeline · Consent Ledger`;
    document.getElementById("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_SLOT);
      location.assign(`/ui/?subject=${encodeURIComponent(subject)}`);
    });
    document.getElementById("subject-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const other = document.getElementById("other-subject").value.trim();
      if (other) openSubject(other);
    });
    document.getElementById("print-page").addEventListener("click", () => window.print());
    suggestSubjects(document.getElementById("other-subject"), document.getElementById("subject-suggestions"));
    if (!storedKey()) {
      location.replace(`/ui/?subject=${encodeURIComponent(subject)}`);
      return;
    }
    loadPurposes();
    document.getElementById("question-form").addEventListener("submit", (event) => {
      event.preventDefault();
      ask(state);
    });
    loadTimeline(state).then((loaded) => {
      if (loaded) loadOverview(state, "", "");
    });
  }

  // Suggest subjects whose id starts with what is typed (GET /v1/subjects?prefix=).
  function suggestSubjects(input, list) {
    let pending = null;
    let asked = null;
    input.addEventListener("input", () => {
      clearTimeout(pending);
      pending = setTimeout(async () => {
        const prefix = input.value.trim();
        if (prefix === asked) return;
        asked = prefix;
        let page;
        try {
          page = await api(`/v1/subjects?prefix=${encodeURIComponent(prefix)}&limit=10`);
        } catch (error) {
          return; // suggestions are a convenience: the Open button still works
        }
        if (asked !== prefix) return;
        list.replaceChildren(...page.subjects.map((s) => el("option", { value: s })));
        const status = document.getElementById("search-status");
        if (status) status.textContent = page.subjects.length ? `${page.subjects.length} matching subjects` : "no subject matches";
      }, 150);
    });
  }

  // The picture and the matrix at D as known at K, from GET /v1/subjects/{s}/overview.
  async function loadOverview(state, at, knownAt) {
    const params = new URLSearchParams();
    if (at) params.set("at", at);
    if (knownAt) params.set("known_at", knownAt);
    let overview;
    try {
      overview = await api(`/v1/subjects/${encodeURIComponent(state.subject)}/overview?${params}`);
    } catch (error) {
      showMessage(document.getElementById("subject-message"), explain(error, "see subject timelines"));
      return;
    }
    state.overview = overview;
    const matrix = overview.matrix;
    document.getElementById("glance-when").textContent =
      `D ${when(matrix.at)} · K ${when(matrix.known_at)} · ledger position ${matrix.position}`;
    LedgerChart.drawMatrix(document.getElementById("matrix"), matrix);
    const tip = LedgerChart.tooltip(document.getElementById("chart-tooltip"), (item) => describeEvent(state, item));
    LedgerChart.drawCharts(document.getElementById("charts"), overview, {
      tooltip: tip,
      onOpen: (item) => {
        const row = item.event_id && document.getElementById(`event-${item.event_id}`);
        if (row) row.scrollIntoView({ block: "center" });
      },
    });
    document.body.dataset.overview = "ready";
  }

  // The tooltip's detail: the event's words and evidence, from the loaded history.
  function describeEvent(state, item) {
    if (item.type === "TermsPublished") {
      return el("ul", { className: "plain clauses-inline" },
        item.clauses.map((c) => el("li", { text: `${c.purpose}: ${c.default}` })));
    }
    const event = state.byId.get(item.event_id);
    if (!event) return null;
    const facts = el("dl", { className: "kv" });
    const add = (name, value) => { if (value) facts.append(el("dt", { text: name }), el("dd", { text: value })); };
    add("purpose", event.purpose);
    add("party", event.party);
    add("scope", Array.isArray(event.content_ids) ? event.content_ids.join(", ") : (event.purpose ? "whole catalogue" : ""));
    add("aspect", event.aspect);
    add("terms", event.version);
    add("expires", event.expires_at && when(event.expires_at));
    add("reason", event.reason);
    add("actor", event.actor); // BRIEF §2.1: who recorded it (an agent, or the subject)
    add("model", event.model);
    add("voided by", event.voided_by && shortId(event.voided_by));
    add("event", event.event_id);
    const box = el("div", {}, facts);
    if ("evidence" in event) box.append(el("p", { className: "tip-head", text: "Evidence" }), evidenceOf(event));
    return box;
  }

  async function loadPurposes() {
    const select = document.getElementById("q-purpose");
    let purposes = FALLBACK_PURPOSES;
    try {
      const response = await fetch("/openapi.json", { credentials: "omit" });
      const spec = await response.json();
      const params = spec.paths["/v1/check"].get.parameters;
      const found = params.find((p) => p.name === "purpose");
      if (found && found.schema && Array.isArray(found.schema.enum)) purposes = found.schema.enum;
    } catch (error) {
      // The vocabulary's defaults serve when the schema cannot be read.
    }
    select.replaceChildren(...purposes.map((p) => el("option", { value: p, text: p })));
    if (purposes.includes("ai-training")) select.value = "ai-training";
  }

  async function loadTimeline(state) {
    const message = document.getElementById("timeline-message");
    const table = document.getElementById("timeline");
    const base = `/v1/subjects/${encodeURIComponent(state.subject)}/history`;
    const events = [];
    try {
      let after = 0;
      for (;;) {
        const page = await api(`${base}?limit=${PAGE_SIZE}&after=${after}`);
        events.push(...page.events);
        if (page.next === null || page.next === undefined) break;
        after = page.next;
      }
    } catch (error) {
      const explained = explain(error, "see subject timelines");
      if (error.status === 404) {
        state.unknown = true;
        showMessage(document.getElementById("subject-message"), {
          text: `Unknown subject: the ledger holds no event about “${state.subject}”, so there is nothing to decide.`,
          detail: "Check the id, or find the subject with the search box above.",
        });
        for (const id of ["glance", "chart-card"]) document.getElementById(id).hidden = true;
        document.querySelector(".card.question").hidden = true;
        document.querySelector(".card.timeline").hidden = true;
      } else {
        showMessage(message, explained);
      }
      document.getElementById("summary").textContent = "";
      return false;
    }
    state.events = events;
    state.byId = new Map(events.map((e) => [e.event_id, e]));
    const tbody = table.tBodies[0];
    tbody.replaceChildren(...events.map((e) => eventRow(e)));
    table.hidden = false;
    message.hidden = true;
    const voided = events.filter((e) => e.voided_by).length;
    document.getElementById("summary").textContent =
      `${events.length} event${events.length === 1 ? "" : "s"}` +
      (voided ? `, ${voided} voided` : "") + " · as the ledger knows it now";
    return true;
  }

  function eventRow(e) {
    const [label, tone] = EVENT_LABELS[e.type] || [e.type, "other"];
    const row = el("tr", {
      id: `event-${e.event_id}`,
      className: e.voided_by ? "voided" : "",
      "data-event-id": e.event_id,
      "data-type": e.type,
    });
    row.append(
      el("td", { className: "num", text: String(e.position) }),
      el("td", { className: "event" },
        el("span", { className: `badge ${tone}`, text: label }),
        el("code", { className: "id", title: e.event_id, text: shortId(e.event_id) })),
      timeCell(e.effective_at),
      timeCell(e.recorded_at),
      el("td", { text: e.purpose || "—" }),
      el("td", { text: e.party || (e.type === "TermsAccepted" ? "platform" : "—") }),
      el("td", {}, scopeOf(e)),
      el("td", { text: e.aspect || "—" }),
      el("td", { className: "evidence" }, evidenceOf(e)),
      el("td", { className: "notes" }, notesOf(e)),
    );
    return row;
  }

  function scopeOf(e) {
    if (e.type === "TermsAccepted") return el("span", { className: "terms-version" }, "terms ", el("strong", { text: e.version }));
    if (Array.isArray(e.content_ids) && e.content_ids.length) {
      return el("span", { className: "content-ids" }, e.content_ids.map((c) => el("code", { text: c })));
    }
    if (e.type === "ConsentGranted" || e.type === "ConsentRevoked") return "whole catalogue";
    return "—";
  }

  function evidenceOf(e) {
    if (!("evidence" in e)) return "—";
    if (!e.evidence) return el("span", { className: "muted", text: "none recorded" });
    const list = el("dl", { className: "kv" });
    for (const [name, value] of Object.entries(e.evidence)) {
      if (name === "personal_data" && value && value.erased) {
        list.append(el("dt", { text: "personal data" }), el("dd", { className: "muted", text: "erased" }));
        continue;
      }
      const text = typeof value === "object" ? JSON.stringify(value) : String(value);
      list.append(el("dt", { text: name }), el("dd", { text }));
    }
    return list;
  }

  function notesOf(e) {
    const notes = [];
    if (e.reason) notes.push(el("div", {}, el("span", { className: "muted", text: "reason " }), `“${e.reason}”`));
    if (e.expires_at) notes.push(el("div", {}, el("span", { className: "muted", text: "expires " }), when(e.expires_at)));
    if (e.voided_event_id) notes.push(el("div", {}, "voids ", eventLink(e.voided_event_id)));
    if (e.grant_event_id) notes.push(el("div", {}, "ends grant ", eventLink(e.grant_event_id)));
    if (e.voided_by) notes.push(el("div", { className: "void-note" }, "voided by ", eventLink(e.voided_by)));
    return notes.length ? notes : "";
  }

  // ------------------------------------------------------------------ the question

  function questionFromForm(subject) {
    const value = (id) => document.getElementById(id).value.trim();
    return {
      subject,
      purpose: value("q-purpose"),
      party: value("q-party") || "platform",
      content: value("q-content"),
      aspect: value("q-aspect") || "all",
      at: value("q-at"),
      known_at: value("q-known-at"),
    };
  }

  function queryOf(question, names) {
    const params = new URLSearchParams();
    for (const name of names) if (question[name]) params.set(name, question[name]);
    return params.toString();
  }

  async function ask(state) {
    const answer = document.getElementById("answer");
    if (state.unknown) return; // nothing to decide about a subject the ledger does not hold
    const question = questionFromForm(state.subject);
    const query = queryOf(question, ["subject", "purpose", "party", "content", "aspect", "at", "known_at"]);
    let decision;
    try {
      decision = await api(`/v1/check?${query}`);
    } catch (error) {
      clearMarks();
      showMessage(answer, explain(error, "ask this question"));
      return;
    }
    renderAnswer(state, question, decision);
    markTimeline(state, question, decision);
    loadOverview(state, question.at, question.known_at);
  }

  // When the answer is "erased": what that means, and the question as known just before.
  function erasureNote(state, question) {
    const erasure = state.events.find((e) => e.type === "SubjectErased");
    if (!erasure) return null;
    const before = justBefore(erasure.recorded_at);
    const again = el("button", { type: "button", id: "ask-before-erasure", text: "Ask as known just before the erasure" });
    again.addEventListener("click", () => {
      document.getElementById("q-known-at").value = before;
      ask(state);
    });
    return el("div", { className: "erasure-note", id: "erasure-note" },
      el("p", {},
        el("strong", { text: `The subject's personal data was destroyed on ${when(erasure.recorded_at)}.` }),
        " Erasure (GDPR Art. 17) destroyed the key that sealed their evidence (IP address, e-mail, name, notes), so it can no longer be read. " +
        "The pseudonymous consent facts recorded before it remain in the ledger and remain provable by their Merkle inclusion proofs (GDPR Art. 7(1)); " +
        "from the erasure on, everything is denied."),
      el("p", {}, again, el("span", { className: "muted", text: ` K = ${before}` })));
  }

  // The instant one microsecond before an ISO 8601 UTC instant, in the ledger's format.
  function justBefore(text) {
    const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(text);
    if (!m) return text;
    const micros = Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] || "0").padEnd(6, "0")) - 1;
    const seconds = Math.floor(micros / 1e6);
    const fraction = String(micros - seconds * 1e6).padStart(6, "0");
    return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
  }

  function renderAnswer(state, question, decision) {
    const answer = document.getElementById("answer");
    answer.replaceChildren();
    answer.className = `answer ${decision.allowed ? "allowed" : "denied"}`;
    const verdict = decision.allowed ? "Allowed" : "Denied";
    const scope = question.content ? `content ${question.content}` : "whole catalogue";
    const aspect = question.aspect === "all" ? "" : ` (${question.aspect})`;
    const atText = question.at ? when(normalise(question.at)) : "now";
    const knownText = question.known_at ? when(normalise(question.known_at)) : "now";
    const deciding = decision.event_ids.map((id) => {
      const event = state.byId.get(id);
      const label = event ? `${(EVENT_LABELS[event.type] || [event.type])[0]} · ${shortId(id)}` : shortId(id);
      return el("li", {}, eventLink(id, label), event ? el("span", { className: "muted", text: ` effective ${when(event.effective_at)}` }) : "");
    });
    answer.append(
      el("div", { className: "verdict-row" },
        el("span", { className: "verdict", id: "verdict", text: verdict }),
        el("p", { className: "restated" },
          el("strong", { text: question.party }), " ",
          decision.allowed ? "may" : "may not", " use ",
          el("strong", { text: state.subject }), "’s ", scope, aspect, " for ",
          el("strong", { text: question.purpose }),
          ` — as of ${atText}, as known ${question.known_at ? `at ${knownText}` : "now"}.`)),
      el("dl", { className: "facts" },
        el("dt", { text: "Basis" }),
        el("dd", {}, el("code", { id: "basis", text: decision.basis }), " ",
          el("span", { className: "muted", text: BASIS_MEANINGS[decision.basis] || "" })),
        el("dt", { text: "Deciding event" }),
        el("dd", {}, deciding.length ? el("ul", { className: "plain", id: "deciding" }, deciding) : el("span", { className: "muted", text: "none: no event decides" })),
        el("dt", { text: "Terms in force" }),
        el("dd", { id: "terms-version", text: decision.terms_version || "none" }),
        el("dt", { text: "Ledger position" }),
        el("dd", {}, el("span", { id: "position", text: String(decision.position) }),
          el("span", { className: "muted", text: " (the answer reflects the ledger up to this position)" }))),
    );
    if (decision.basis === "erased") answer.append(erasureNote(state, question) || "");
    const download = el("button", { type: "button", id: "download-dossier", text: "Download dispute dossier (JSON)" });
    const pdf = el("button", { type: "button", id: "download-pdf", className: "primary", text: "Download court dossier (PDF)" });
    const status = el("span", { className: "muted dossier-status" });
    download.addEventListener("click", () => downloadDossier(state, question, status));
    pdf.addEventListener("click", () => downloadPdf(state, question, status));
    answer.append(el("div", { className: "answer-actions" }, pdf, download, status));
    answer.hidden = false;
  }

  // A bare date means midnight UTC; other times are shown as typed.
  function normalise(text) {
    return /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  }

  function clearMarks() {
    for (const row of document.querySelectorAll("#timeline tbody tr")) {
      row.classList.remove("deciding", "outside");
      row.removeAttribute("title");
    }
  }

  function markTimeline(state, question, decision) {
    clearMarks();
    const at = question.at ? Date.parse(normalise(question.at)) : NaN;
    const knownAt = question.known_at ? Date.parse(normalise(question.known_at)) : NaN;
    for (const event of state.events) {
      const row = document.getElementById(`event-${event.event_id}`);
      if (!row) continue;
      const notKnown = !Number.isNaN(knownAt) && Date.parse(event.recorded_at) > knownAt;
      const notYet = !Number.isNaN(at) && Date.parse(event.effective_at) > at &&
        event.type !== "EventVoided" && event.type !== "SubjectErased";
      if (notKnown || notYet) {
        row.classList.add("outside");
        row.title = notKnown ? "not yet recorded at K" : "not yet in effect at D";
      }
    }
    let first = null;
    for (const id of decision.event_ids) {
      const row = document.getElementById(`event-${id}`);
      if (row) {
        row.classList.add("deciding");
        first = first || row;
      }
    }
    if (first) first.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  async function downloadDossier(state, question, status) {
    status.textContent = "Preparing…";
    const query = queryOf(question, ["party", "content", "aspect", "at", "known_at"]);
    let dossier;
    try {
      dossier = await api(`/v1/subjects/${encodeURIComponent(state.subject)}/dossier?${query}`);
    } catch (error) {
      const explained = explain(error, "download dossiers");
      status.textContent = `${explained.text} ${explained.detail}`;
      return;
    }
    const blob = new Blob([JSON.stringify(dossier, null, 2) + "\n"], { type: "application/json" });
    const link = el("a", {
      href: URL.createObjectURL(blob),
      download: `dossier-${state.subject.replace(/[^A-Za-z0-9._-]+/g, "_")}-${dossier.question.at.slice(0, 10)}.json`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    status.textContent = `Dossier of ${dossier.events.length} events, proofs ${dossier.proofs}.`;
  }

  // The court-ready PDF: rendered by the server, the JSON dossier embedded in it.
  async function downloadPdf(state, question, status) {
    status.textContent = "Preparing the PDF…";
    const query = queryOf(question, ["purpose", "party", "content", "aspect", "at", "known_at"]);
    let response;
    try {
      response = await fetch(`/v1/subjects/${encodeURIComponent(state.subject)}/dossier.pdf?${query}`, {
        headers: { Authorization: `Bearer ${storedKey()}`, Accept: "application/pdf" },
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      status.textContent = "The ledger could not be reached.";
      return;
    }
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch (error) { problem = null; }
      const explained = explain(new ApiError(response.status, problem), "download dossiers");
      status.textContent = [explained.text, explained.detail].filter(Boolean).join(" ");
      return;
    }
    const blob = await response.blob();
    const link = el("a", {
      href: URL.createObjectURL(blob),
      download: `dossier-${state.subject.replace(/[^A-Za-z0-9._-]+/g, "_")}.pdf`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    status.textContent = `PDF ready (${Math.round(blob.size / 1024)} KiB): verify it with consent-ledger dossier verify.`;
  }

  // ------------------------------------------------------------------ dossier (print)

  // The court dossier page, rendered from the dossier embedded in it (the PDF's source).
  function dossierPage() {
    const dossier = JSON.parse(document.getElementById("dossier-data").textContent);
    const overview = dossier.overview;
    const text = (id, value) => { document.getElementById(id).textContent = value; };
    text("d-subject", dossier.subject);
    document.title = `Dossier ${dossier.subject} · Consent Ledger`;
    text("d-at", when(dossier.question.at));
    text("d-known-at", when(dossier.question.known_at));
    text("d-party", dossier.question.party);
    text("d-scope", dossier.question.content || "whole catalogue");
    text("d-aspect", dossier.question.aspect);
    text("d-generated", when(dossier.generated_at));
    text("d-position", String(dossier.ledger_position));
    text("d-proofs", dossier.proofs);
    const byId = new Map(dossier.events.map((e) => [e.event_id, e]));
    document.getElementById("d-decisions").replaceChildren(...dossier.decisions.map((d) => el("tr", {},
      el("th", { scope: "row", text: d.purpose }),
      el("td", { className: d.allowed ? "allowed" : "denied" }, el("strong", { text: d.allowed ? "ALLOWED" : "DENIED" })),
      el("td", {}, el("code", { text: d.basis }), el("div", { className: "muted small", text: d.meaning })),
      el("td", {}, d.event_ids.length ? d.event_ids.map((id) => el("div", {}, el("code", { text: id }),
        byId.get(id) ? el("span", { className: "muted small", text: ` ${(EVENT_LABELS[byId.get(id).type] || [""])[0]}, effective ${when(byId.get(id).effective_at)}` }) : "")) : el("span", { className: "muted", text: "none" })),
      el("td", { text: d.terms_version || "none" }))));
    if (overview) {
      LedgerChart.drawMatrix(document.getElementById("matrix"), overview.matrix);
      LedgerChart.drawCharts(document.getElementById("charts"), overview, {});
    }
    const terms = dossier.terms_in_force;
    const termsBox = document.getElementById("d-terms");
    if (terms) {
      termsBox.replaceChildren(
        el("p", {}, "Version ", el("strong", { text: terms.version }), ` in force from ${when(terms.effective_from)}; accepted (event `,
          el("code", { text: terms.acceptance_event_id }), `) effective ${when(terms.accepted_effective_at)}; published by event `,
          el("code", { text: terms.publication_event_id }), "."),
        el("p", {}, "Document SHA-256: ", el("code", { text: terms.document_sha256 || "none recorded" })),
        el("table", { className: "clauses" }, el("thead", {}, el("tr", {}, el("th", { text: "Purpose" }), el("th", { text: "Default for the platform" }))),
          el("tbody", {}, terms.clauses.map((c) => el("tr", {}, el("td", { text: c.purpose }), el("td", { text: c.default }))))));
    }
    document.getElementById("d-events").replaceChildren(...dossier.events.map((e) => dossierEvent(e)));
    const cp = dossier.checkpoint;
    const cpBox = document.getElementById("d-checkpoint");
    if (cp) {
      const list = el("dl", { className: "kv wide" });
      for (const name of ["log_id", "tree_size", "root_hash", "timestamp", "public_key", "signature"]) {
        list.append(el("dt", { text: name }), el("dd", {}, el("code", { text: String(cp[name]) })));
      }
      cpBox.replaceChildren(list);
    }
    document.getElementById("d-steps").replaceChildren(...dossier.verification.map((step) => el("li", { text: step })));
    document.body.dataset.rendered = "yes";
  }

  function dossierEvent(e) {
    const [label, tone] = EVENT_LABELS[e.type] || [e.type, "other"];
    const facts = el("dl", { className: "kv" });
    const add = (name, value) => { if (value !== null && value !== undefined && value !== "") facts.append(el("dt", { text: name }), el("dd", { text: String(value) })); };
    add("position", e.position);
    add("effective", when(e.effective_at));
    add("recorded", when(e.recorded_at));
    add("purpose", e.purpose);
    add("party", e.party);
    add("scope", Array.isArray(e.content_ids) ? e.content_ids.join(", ") : e.purpose ? "whole catalogue" : "");
    add("aspect", e.aspect);
    add("terms version", e.version);
    add("expires", e.expires_at && when(e.expires_at));
    add("reason", e.reason);
    add("actor", e.actor);
    add("model", e.model);
    add("voids", e.voided_event_id);
    add("voided by", e.voided_by);
    add("decides", (e.rests_on || []).join(", "));
    if (e.clauses) add("clauses", e.clauses.map((c) => `${c.purpose}=${c.default}`).join(", "));
    const proof = e.proof
      ? el("p", { className: "proof" }, `Leaf ${e.proof.leaf_index} of ${e.proof.tree_size}; leaf hash `, el("code", { text: e.proof.leaf_hash }),
        `; audit path of ${e.proof.audit_path.length} hashes: `, el("code", { className: "path", text: e.proof.audit_path.join(" ") }))
      : el("p", { className: "proof muted", text: "No inclusion proof: the log had not covered this event." });
    return el("article", { className: `event-card${e.voided_by ? " voided" : ""}` },
      el("h3", {}, el("span", { className: `badge ${tone}`, text: label }), " ", el("code", { text: e.event_id })),
      facts,
      "evidence" in e ? el("div", {}, el("p", { className: "tip-head", text: "Evidence" }), evidenceOf(e)) : "",
      proof);
  }

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "sign-in") signInPage();
    else if (page === "timeline") timelinePage();
    else if (page === "dossier") dossierPage();
  });
})();
