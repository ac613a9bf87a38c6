// The audit trail viewer: filters (kept in the page's URL), keyset pages, a detail
// panel, the verify badge, exports and a live tail, over the viewer's JSON API.
// Every value from a record is written with textContent, never parsed as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  // The API sits next to the page, wherever the application mounted it.
  const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const FILTERS = ["actor", "entity", "tenant", "outcome", "level", "q", "limit"];

  const state = {
    token: sessionStorage.getItem("audit-token") || "",
    session: null,
    cursors: [], // the cursors of the pages before this one (for "Newer")
    cursor: null,
    next: null,
    rows: [],
    live: null, // the AbortController of the live tail
  };

  // ---- the API ----------------------------------------------------------

  function headers() {
    return state.token ? { Authorization: "Bearer " + state.token } : {};
  }

  async function api(path) {
    const response = await fetch(base + path, { headers: headers() });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (_) {
      body = { error: text };
    }
    if (!response.ok) {
      const error = new Error(body.error || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  // ---- filters <-> URL ----------------------------------------------------

  // The API's parameters of the filter form (no cursor).
  function formParams() {
    const p = new URLSearchParams();
    const range = $("range").value;
    if (range === "custom") {
      if ($("since").value) p.set("since", new Date($("since").value).toISOString());
      if ($("until").value) p.set("until", new Date($("until").value).toISOString());
    } else if (range) {
      p.set("since", range);
    }
    for (const o of $("event").selectedOptions) p.append("event", o.value);
    for (const name of FILTERS) {
      const v = $(name).value.trim();
      if (v && !(name === "limit" && v === "50")) p.set(name, v);
    }
    return p;
  }

  // Fills the form from the page's URL.
  function readUrl() {
    const p = new URLSearchParams(location.search);
    const since = p.get("since") || "";
    const presets = ["1h", "24h", "7d", "30d"];
    if (presets.includes(since)) {
      $("range").value = since;
    } else if (since || p.get("until")) {
      $("range").value = "custom";
      $("since").value = localInput(since);
      $("until").value = localInput(p.get("until") || "");
    } else {
      $("range").value = "";
    }
    showCustom();
    const events = p.getAll("event");
    for (const o of $("event").options) o.selected = events.includes(o.value);
    for (const name of FILTERS) {
      const el = $(name);
      el.value = p.get(name) || (name === "limit" ? "50" : "");
      if (el.tagName === "SELECT" && el.selectedIndex < 0) {
        // A value the picker lacks (limit=3 in a shared link): offer it.
        el.add(new Option(p.get(name), p.get(name), true, true));
      }
    }
    state.cursor = p.get("cursor");
    state.cursors = [];
  }

  function writeUrl(push) {
    const p = formParams();
    if (state.cursor) p.set("cursor", state.cursor);
    const url = location.pathname + (p.toString() ? "?" + p : "");
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  // An RFC 3339 time as a datetime-local value in the viewer's time zone.
  function localInput(rfc3339) {
    const d = parseTime(rfc3339);
    if (!d) return "";
    const pad = (n) => String(n).padStart(2, "0");
    return (
      d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds())
    );
  }

  function showCustom() {
    const custom = $("range").value === "custom";
    $("custom-since").hidden = !custom;
    $("custom-until").hidden = !custom;
  }

  // ---- rendering ----------------------------------------------------------

  // Record times carry nanoseconds; Date takes milliseconds.
  function parseTime(s) {
    if (!s) return null;
    const d = new Date(String(s).replace(/(\.\d{3})\d+/, "$1"));
    return isNaN(d) ? null : d;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
    timeZoneName: "short",
  });

  function localTime(s) {
    const d = parseTime(s);
    return d ? timeFormat.format(d) : String(s);
  }

  function actorOf(r) {
    if (!r.actor) return "";
    return r.actor.email || r.actor.id;
  }

  function entityOf(r) {
    if (!r.entity) return "";
    const id = r.entity.id;
    return id === null || id === undefined ? r.entity.type : r.entity.type + ":" + (typeof id === "string" ? id : JSON.stringify(id));
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function rowOf(r, fresh) {
    const tr = document.createElement("tr");
    tr.tabIndex = 0;
    tr.dataset.id = r.id;
    if (fresh) tr.classList.add("fresh");
    if (r.outcome === "failure") tr.classList.add("failed");
    cell(tr, localTime(r.time)).title = r.time;
    cell(tr, r.event, "event").title = "code " + r.code + " · " + r.category + " · " + r.level;
    const actor = cell(tr, actorOf(r));
    if (r.actor) actor.title = [r.actor.id, r.actor.name, r.actor.kind].filter(Boolean).join(" · ");
    cell(tr, entityOf(r), "entity");
    cell(tr, r.outcome, "outcome " + r.outcome);
    cell(tr, r.description || (r.error ? r.error : ""), "description");
    tr.addEventListener("click", () => openDetail(r, tr));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        openDetail(r, tr);
      } else if (e.key === "ArrowDown" && tr.nextElementSibling) {
        e.preventDefault();
        tr.nextElementSibling.focus();
      } else if (e.key === "ArrowUp" && tr.previousElementSibling) {
        e.preventDefault();
        tr.previousElementSibling.focus();
      }
    });
    return tr;
  }

  function render() {
    const body = $("results").tBodies[0];
    body.replaceChildren(...state.rows.map((r) => rowOf(r, false)));
    const first = state.cursors.length === 0 && !state.cursor;
    $("prev").disabled = first;
    $("next").disabled = !state.next;
    const n = state.rows.length;
    $("status").textContent =
      n === 0 ? "No records match." : n + (n === 1 ? " record" : " records") + (first ? "" : " (older page)");
  }

  // ---- the detail panel -----------------------------------------------------

  function section(parent, title) {
    const h = document.createElement("h3");
    h.textContent = title;
    parent.appendChild(h);
  }

  function text(v) {
    if (v === null || v === undefined) return "—";
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  // A two-column table of [name, value] pairs.
  function pairs(parent, rows) {
    const dl = document.createElement("dl");
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = text(v);
      dl.append(dt, dd);
    }
    parent.appendChild(dl);
  }

  // The entity before and after, every field, the changed ones highlighted.
  function changesTable(parent, changes) {
    const previous = changes.previous || {};
    const current = changes.current || {};
    const difference = changes.difference || {};
    const keys = [...new Set([...Object.keys(previous), ...Object.keys(current), ...Object.keys(difference)])];
    const table = document.createElement("table");
    table.className = "changes";
    const head = table.createTHead().insertRow();
    for (const t of ["Field", "Before", "After"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = t;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const k of keys) {
      const tr = body.insertRow();
      const changed = Object.prototype.hasOwnProperty.call(difference, k);
      const [before, after] = changed ? difference[k] : [previous[k], current[k]];
      if (changed) {
        tr.className = "changed";
        tr.title = "changed";
      }
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = k + (changed ? " (changed)" : "");
      tr.appendChild(th);
      cell(tr, text(before), "before");
      cell(tr, text(after), "after");
    }
    parent.appendChild(table);
  }

  let opener = null;

  function openDetail(r, row) {
    opener = row;
    for (const tr of document.querySelectorAll("#results tr.selected")) tr.classList.remove("selected");
    row.classList.add("selected");
    $("detail-title").textContent = r.event + " · " + localTime(r.time);
    const body = $("detail-body");
    body.replaceChildren();
    pairs(body, [
      ["Description", r.description],
      ["Outcome", r.outcome],
      ["Error", r.error],
      ["Event", r.event + " (code " + r.code + ", " + r.category + ", " + r.level + ")"],
      ["Time (UTC)", r.time],
      ["Duration", r.duration_ns === null || r.duration_ns === undefined ? null : (r.duration_ns / 1e6).toFixed(3) + " ms"],
      ["Record id", r.id],
    ]);
    section(body, "Context");
    const req = r.request || {};
    pairs(body, [
      ["Actor", r.actor && [r.actor.id, r.actor.email, r.actor.name, r.actor.kind].filter(Boolean).join(" · ")],
      ["Impersonated by", r.impersonator && [r.impersonator.id, r.impersonator.email].filter(Boolean).join(" · ")],
      ["Tenant", r.tenant],
      ["Environment", r.environment],
      ["Source", r.source],
      ["Request id", req.id],
      ["Client IP", req.ip],
      ["User agent", req.user_agent],
      ["Method", req.method],
      ["Route", req.route],
      ["Status", req.status],
      ["Entity", entityOf(r)],
      ["Trace", r.trace && JSON.stringify(r.trace)],
      ["Bulk operation", r.operation && r.operation.id + (r.operation.index === undefined
        ? " (summary: " + r.operation.count + " entities)"
        : " (entity " + (r.operation.index + 1) + ")")],
      ["Reverts record", r.reverts],
    ]);
    if (r.metadata && Object.keys(r.metadata).length) {
      section(body, "Metadata");
      pairs(body, Object.entries(r.metadata));
    }
    if (r.changes) {
      section(body, "Changes");
      changesTable(body, r.changes);
    }
    section(body, "Chain");
    pairs(body, [
      ["Hash", r.hash],
      ["Previous hash", r.prev_hash || "(first of its producer)"],
      ["Emitted at", r.site && r.site.file + ":" + r.site.line + " (" + r.site.function + ")"],
    ]);
    $("detail").hidden = false;
    $("detail-title").focus();
  }

  function closeDetail() {
    $("detail").hidden = true;
    if (opener && document.body.contains(opener)) opener.focus();
  }

  // ---- loading -----------------------------------------------------------

  async function load() {
    const p = formParams();
    if (state.cursor) p.set("cursor", state.cursor);
    $("error").textContent = "";
    $("status").textContent = "Loading…";
    try {
      const page = await api("api/records?" + p);
      state.rows = page.records;
      state.next = page.next;
      render();
    } catch (e) {
      if (e.status === 401) return signIn("The token was refused.");
      state.rows = [];
      state.next = null;
      render();
      $("error").textContent = e.message;
    }
  }

  function apply(push) {
    state.cursor = null;
    state.cursors = [];
    writeUrl(push);
    restartLive();
    return load();
  }

  async function loadCatalog() {
    const select = $("event");
    const chosen = new URLSearchParams(location.search).getAll("event");
    try {
      const catalog = await api("api/catalog");
      select.replaceChildren();
      for (const e of catalog.events) {
        const label = e.name + " (" + e.code + ")" + (e.last_seen ? "" : " — no records");
        const o = new Option(label, e.name, false, chosen.includes(e.name));
        if (e.description) o.title = e.description;
        select.add(o);
      }
    } catch (e) {
      $("error").textContent = "Event list: " + e.message;
    }
    for (const name of chosen) {
      if (![...select.options].some((o) => o.value === name)) select.add(new Option(name, name, true, true));
    }
  }

  async function loadVerify() {
    const badge = $("verify");
    if (!state.session || state.session.scope !== "admin") {
      badge.hidden = true;
      return;
    }
    badge.hidden = false;
    badge.className = "badge";
    badge.textContent = "Verifying…";
    try {
      const v = await api("api/verify");
      if (v.intact) {
        badge.classList.add("ok");
        badge.textContent = "Chain intact · " + v.rows + " rows";
      } else {
        badge.classList.add("broken");
        badge.textContent = "Chain BROKEN at row " + v.first_break.seq;
        badge.title = v.first_break.what;
      }
    } catch (e) {
      badge.classList.add("broken");
      badge.textContent = "Verification failed: " + e.message;
    }
  }

  // ---- export ----------------------------------------------------------------

  async function exportAs(format) {
    const p = formParams();
    p.delete("limit");
    p.set("format", format);
    const url = base + "api/export?" + p;
    if (!state.token) {
      location.assign(url); // served as an attachment: the page stays
      return;
    }
    $("status").textContent = "Exporting…";
    try {
      const response = await fetch(url, { headers: headers() });
      if (!response.ok) throw new Error((await response.json()).error);
      const blob = await response.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = "audit-export." + format;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      $("status").textContent = "Exported.";
    } catch (e) {
      $("error").textContent = "Export: " + e.message;
    }
  }

  // ---- live mode ------------------------------------------------------------

  // Follows /api/tail (Server-Sent Events read from a fetch, which can send the
  // token) and puts each new record at the top of the first page.
  async function startLive() {
    const controller = new AbortController();
    state.live = controller;
    const p = formParams();
    p.delete("limit");
    p.delete("until");
    let last = null;
    while (!controller.signal.aborted) {
      try {
        const h = headers();
        if (last !== null) h["Last-Event-ID"] = last;
        const response = await fetch(base + "api/tail?" + p, { headers: h, signal: controller.signal });
        if (!response.ok) throw new Error((await response.json()).error);
        $("status").textContent = "Live: waiting for new records…";
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = { data: "" };
            for (const line of message.split("\n")) {
              const colon = line.indexOf(":");
              if (colon <= 0) continue;
              event[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, "");
            }
            if (event.event === "record") {
              last = event.id;
              prepend(JSON.parse(event.data));
            } else if (event.event === "error") {
              $("error").textContent = "Live: " + event.data;
            }
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
        $("error").textContent = "Live: " + e.message + " (reconnecting)";
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  function prepend(r) {
    const limit = Number($("limit").value) || 50;
    state.rows.unshift(r);
    const body = $("results").tBodies[0];
    body.insertBefore(rowOf(r, true), body.firstChild);
    while (state.rows.length > limit) {
      state.rows.pop();
      body.lastChild.remove();
    }
    $("status").textContent = "Live: " + state.rows.length + " records shown, newest first";
  }

  function stopLive() {
    if (state.live) state.live.abort();
    state.live = null;
  }

  function restartLive() {
    stopLive();
    if ($("live").checked) startLive();
  }

  // ---- wiring ----------------------------------------------------------------

  function signIn(message) {
    stopLive();
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("token").focus();
  }

  async function start() {
    try {
      state.session = await api("api/session");
    } catch (e) {
      if (e.status === 401) return signIn(state.token ? "The token was refused." : "");
      $("error").textContent = e.message;
    }
    $("signin").hidden = true;
    $("app").hidden = false;
    const s = state.session || {};
    $("who").textContent = s.scope === "tenant" ? "Tenant " + s.tenant : s.tokens ? "Administrator" : "Administrator (no tokens: loopback only)";
    $("tenant-field").hidden = s.scope === "tenant";
    readUrl();
    await loadCatalog();
    readUrl();
    await Promise.all([load(), loadVerify()]);
  }

  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("audit-token", state.token);
    $("token").value = "";
    start();
  });
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    apply(true);
  });
  $("range").addEventListener("change", showCustom);
  $("reset").addEventListener("click", () => {
    $("filters").reset();
    for (const o of $("event").options) o.selected = false;
    showCustom();
    apply(true);
  });
  $("next").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors.push(state.cursor);
    state.cursor = state.next;
    writeUrl(true);
    load();
  });
  $("prev").addEventListener("click", () => {
    // Back to the page before, or to the first page of a shared link.
    state.cursor = state.cursors.length ? state.cursors.pop() : null;
    writeUrl(true);
    load();
  });
  $("live").addEventListener("change", () => {
    if ($("live").checked && (state.cursor || state.cursors.length)) {
      state.cursor = null;
      state.cursors = [];
      writeUrl(true);
      load();
    }
    restartLive();
  });
  $("export-jsonl").addEventListener("click", () => exportAs("jsonl"));
  $("export-csv").addEventListener("click", () => exportAs("csv"));
  $("close-detail").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("detail").hidden) closeDetail();
  });
  window.addEventListener("popstate", () => {
    readUrl();
    restartLive();
    load();
  });

  start();
})();
