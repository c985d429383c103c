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
    const detail = error.problem && error.problem.detail ? error.problem.detail : "";
    switch (error.status) {
      case 401:
        return { text: "Your API key was not accepted. Sign in again with a valid key.", detail, signIn: true };
      case 403:
        return { text: `Not allowed: this key's role may not ${what}. It needs an auditor or admin key.`, detail, signIn: true };
      case 404:
        return { text: "Not found.", detail };
      case 422:
        return { text: "The question is not valid.", detail };
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
    if (!storedKey()) {
      location.replace(`/ui/?subject=${encodeURIComponent(subject)}`);
      return;
    }
    loadPurposes();
    document.getElementById("question-form").addEventListener("submit", (event) => {
      event.preventDefault();
      ask(state);
    });
    loadTimeline(state);
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
      if (error.status === 404) explained.text = `The ledger holds no event about subject “${state.subject}”.`;
      showMessage(message, explained);
      document.getElementById("summary").textContent = "";
      return;
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
    const download = el("button", { type: "button", id: "download-dossier", text: "Download dispute dossier (JSON)" });
    const status = el("span", { className: "muted dossier-status" });
    download.addEventListener("click", () => downloadDossier(state, question, status));
    answer.append(el("div", { className: "answer-actions" }, download, status));
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

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "sign-in") signInPage();
    else if (page === "timeline") timelinePage();
  });
})();
