// paychan operator dashboard: reads only the management API's JSON routes, polls them, draws SVG charts.
// No framework, no external asset; text goes into the page through textContent only (never innerHTML).
"use strict";

const POLL_MS = Math.max(Number(new URLSearchParams(location.search).get("poll")) || 2000, 250);
const SVG = "http://www.w3.org/2000/svg";
const state = { filters: { limit: "25" }, cursors: [null], page: 0, next: null, busy: false };

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function sat(n) {
  return n === null || n === undefined ? "–" : `${Number(n).toLocaleString("en-US")} sat`;
}

function when(t) {
  if (!t) return "–";
  return new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function short(hex) {
  return hex && hex.length > 20 ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : (hex || "–");
}

class ApiError extends Error {}

// One navigation to the sign-in page, however many requests find the session gone: several answers of 401
// at once (a refresh sends five requests) each assigning the location would abort each other's navigation.
let leaving = false;
function toLogin() {
  if (leaving) return;
  leaving = true;
  location.assign("/login");
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.method && options.method !== "GET") headers["X-Paychan-Dashboard"] = "1";
  const resp = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (resp.status === 401) {
    toLogin();
    throw new ApiError("signed out");
  }
  const body = await resp.json();
  if (!resp.ok) throw new ApiError((body.error && body.error.message) || resp.statusText);
  return body;
}

function barChart(svg, bars, empty) {
  svg.replaceChildren();
  const width = 480, height = 200, base = 170, top = 20;
  const max = Math.max(...bars.map((b) => b.value), 0);
  const step = width / Math.max(bars.length, 1);
  bars.forEach((b, i) => {
    const h = max > 0 ? Math.round(((base - top) * b.value) / max) : 0;
    const g = document.createElementNS(SVG, "g");
    g.setAttribute("data-label", b.label);
    g.setAttribute("data-value", String(b.value));
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", String(i * step + step * 0.15));
    rect.setAttribute("y", String(base - h));
    rect.setAttribute("width", String(step * 0.7));
    rect.setAttribute("height", String(Math.max(h, b.value > 0 ? 1 : 0)));
    rect.setAttribute("class", b.cls || "bar");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${b.label}: ${sat(b.value)}${b.note ? ` (${b.note})` : ""}`;
    rect.append(title);
    g.append(rect);
    if (b.showLabel !== false) {
      const text = document.createElementNS(SVG, "text");
      text.setAttribute("x", String(i * step + step / 2));
      text.setAttribute("y", String(base + 18));
      text.setAttribute("text-anchor", "middle");
      text.textContent = b.label;
      g.append(text);
    }
    if (b.value > 0 && b.showValue !== false) {
      const v = document.createElementNS(SVG, "text");
      v.setAttribute("x", String(i * step + step / 2));
      v.setAttribute("y", String(base - h - 4));
      v.setAttribute("text-anchor", "middle");
      v.setAttribute("class", "value");
      v.textContent = Number(b.value).toLocaleString("en-US");
      g.append(v);
    }
    svg.append(g);
  });
  if (max === 0) {
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", String(width / 2));
    text.setAttribute("y", String(base / 2));
    text.setAttribute("text-anchor", "middle");
    text.setAttribute("class", "muted");
    text.textContent = empty;
    svg.append(text);
  }
}

function renderTotals(t) {
  $("t-open").textContent = t.open_channels;
  $("t-unsettled").textContent = sat(t.value_received_unsettled);
  $("t-closing").textContent = t.channels.closing || 0;
  $("t-closed").textContent = t.channels.closed || 0;
  barChart($("risk-chart"), t.value_at_risk.map((b) => ({
    label: b.hours_to_expiry, value: b.value, note: `${b.channels} channel(s)`,
    cls: b.hours_to_expiry === "expired" || b.hours_to_expiry === "<12h" ? "bar danger" : "bar",
  })), "nothing at risk");
}

function renderRevenue(r) {
  $("t-revenue").textContent = sat(r.total);
  barChart($("revenue-chart"), r.series.map((s, i) => ({
    label: i === r.series.length - 1 ? "now" : `-${r.series.length - 1 - i}h`, value: s.value,
    note: `${s.channels} channel(s)`, showLabel: (r.series.length - 1 - i) % 6 === 0, showValue: false,
  })), "nothing received in 24 h");
}

function renderAlerts(a) {
  const box = $("alerts");
  box.replaceChildren(...a.alerts.map((x) => el("div", { class: `alert ${x.severity}`, "data-code": x.code },
    el("strong", {}, x.severity.toUpperCase()), " ", x.message,
    x.channel_id ? el("a", { href: `#channel/${x.channel_id.replace(":", "/")}` }, " (channel)") : "")));
}

function channelLink(c) {
  return el("a", { href: `#channel/${c.funding_txid}/${c.funding_vout}`, "data-testid": "channel-link" },
    `${short(c.funding_txid)}:${c.funding_vout}`);
}

function renderInflight(s) {
  $("inflight-count").textContent = `(${s.count}${s.more ? "+" : ""})`;
  $("inflight-rows").replaceChildren(...(s.count ? s.settlements.map((c) => el("tr", {},
    el("td", {}, channelLink(c)), el("td", {}, el("code", {}, short(c.settlement_txid))),
    el("td", {}, sat(c.settlement_fee)),
    el("td", {}, `${c.settlement_confirmations ?? "unconfirmed"} / ${s.confirmations_required}`),
    el("td", {}, when(c.expires)))) : [el("tr", {}, el("td", { colspan: "5", class: "muted" }, "none"))]));
}

function listQuery() {
  const f = state.filters, q = new URLSearchParams();
  if (f.status) q.set("status", f.status);
  if (f.client_pubkey) q.set("client_pubkey", f.client_pubkey);
  if (f.expiring_hours) q.set("expiring_before", String(Math.floor(Date.now() / 1000) + 3600 * Number(f.expiring_hours)));
  q.set("limit", f.limit || "25");
  const cursor = state.cursors[state.page];
  if (cursor) q.set("after", cursor);
  return q;
}

async function refreshChannels() {
  try {
    const page = await api(`/channels?${listQuery()}`);
    $("filter-error").textContent = "";
    state.next = page.next;
    $("channel-rows").replaceChildren(...(page.count ? page.channels.map((c) => el("tr",
      { "data-channel": c.channel_id, "data-status": c.status },
      el("td", {}, channelLink(c)), el("td", {}, el("code", {}, short(c.sender))),
      el("td", {}, el("span", { class: `status ${c.status}` }, c.refunded ? "refunded" : c.status)),
      el("td", {}, c.family), el("td", { "data-testid": "received" }, sat(c.value_received)),
      el("td", {}, sat(c.value_left)), el("td", { "data-testid": "payments" }, c.payment_count),
      el("td", {}, when(c.last_payment_time)), el("td", {}, when(c.expires)))) :
      [el("tr", {}, el("td", { colspan: "9", class: "muted" }, "no channel matches"))]));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    $("filter-error").textContent = err.message;
    $("channel-rows").replaceChildren();
    state.next = null;
  }
  $("page-no").textContent = `page ${state.page + 1}`;
  $("page-next").disabled = !state.next;
  $("page-prev").disabled = state.page === 0;
  $("page-first").disabled = state.page === 0;
}

function field(dl, name, value, testid) {
  dl.append(el("dt", {}, name), el("dd", testid ? { "data-testid": testid } : {}, value));
}

function settlementRows(c) {
  // Settlement versions (fee bumps) when the server reports them; else the one settlement.
  const versions = Array.isArray(c.settlement_versions) && c.settlement_versions.length ? c.settlement_versions
    : (c.settlement_txid ? [{ txid: c.settlement_txid, fee: c.settlement_fee,
      confirmations: c.settlement_confirmations }] : []);
  if (!versions.length) return [el("tr", {}, el("td", { colspan: "4", class: "muted" }, "no settlement yet"))];
  return versions.map((v, i) => el("tr", { "data-testid": "settlement-version" },
    el("td", {}, v.version ?? i + 1), el("td", {}, el("code", { "data-testid": "settlement-txid" }, v.txid)),
    el("td", {}, sat(v.fee)), el("td", { "data-testid": "settlement-confirmations" },
      v.confirmations === null || v.confirmations === undefined ? "unknown" : v.confirmations)));
}

async function refreshChannel(txid, vout) {
  const c = await api(`/channels/${txid}/${vout}`);
  $("c-id").textContent = c.channel_id;
  const f = $("c-fields");
  f.replaceChildren();
  field(f, "Status", c.refunded ? "refunded" : c.status, "channel-status");
  field(f, "Client key", c.sender);
  field(f, "Route family", c.family);
  field(f, "Funding", `${sat(c.funding_value)} at ${c.funding_address}`);
  field(f, "Expires", when(c.expires));
  field(f, "Change address", c.change_address);
  const p = $("c-payments");
  p.replaceChildren();
  field(p, "Payments", c.payment_count, "channel-payment-count");
  field(p, "Value received", sat(c.value_received), "channel-received");
  field(p, "Value left to the client", sat(c.value_left));
  field(p, "Opened", when(c.open_time));
  field(p, "Latest payment", when(c.last_payment_time));
  if (c.settlement_status_error) field(p, "Node", c.settlement_status_error);
  $("c-settlements").replaceChildren(...settlementRows(c));
  const button = $("c-close");
  button.hidden = !(c.status === "open" || c.status === "closing");
  button.textContent = c.status === "closing" ? "Retry settlement" : "Close now";
}

function route() {
  const m = location.hash.match(/^#channel\/([0-9a-fA-F]{64})\/(\d+)$/);
  return m ? { txid: m[1], vout: m[2] } : null;
}

async function refresh() {
  const ch = route();
  $("overview").hidden = Boolean(ch);
  $("channel").hidden = !ch;
  const jobs = [api("/alerts").then(renderAlerts)];
  if (ch) {
    jobs.push(refreshChannel(ch.txid, ch.vout));
  } else {
    jobs.push(api("/totals").then(renderTotals), api("/revenue?hours=24").then(renderRevenue),
      api("/settlements?limit=20").then(renderInflight), refreshChannels());
  }
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === "rejected");
  const live = $("live");
  if (failed.length) {
    live.textContent = `offline: ${failed[0].reason.message}`;
    live.className = "live offline";
  } else {
    live.textContent = `live · ${new Date().toISOString().slice(11, 19)}Z`;
    live.className = "live ok";
  }
}

async function tick() {
  if (leaving) return;
  if (!state.busy) {
    state.busy = true;
    try { await refresh(); } finally { state.busy = false; }
  }
  setTimeout(tick, POLL_MS);
}

function wire() {
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.filters = Object.fromEntries(new FormData(ev.target).entries());
    state.cursors = [null];
    state.page = 0;
    refresh();
  });
  $("page-next").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    refresh();
  });
  $("page-prev").addEventListener("click", () => { if (state.page > 0) { state.page -= 1; refresh(); } });
  $("page-first").addEventListener("click", () => { state.page = 0; refresh(); });
  $("signout").addEventListener("click", async () => {
    leaving = true;  // polling stops, and requests still under way that find the session gone stay put
    try {
      await api("/logout", { method: "POST" });
    } finally {
      location.assign("/login");  // the one navigation
    }
  });
  $("c-close").addEventListener("click", async () => {
    const ch = route();
    if (!ch || !confirm(`Settle channel ${ch.txid}:${ch.vout} now with its latest payment?`)) return;
    const out = $("c-close-result");
    out.textContent = "settling…";
    try {
      const r = await api(`/channels/${ch.txid}/${ch.vout}/close`, { method: "POST" });
      out.textContent = `settlement ${r.settlement_txid}`;
    } catch (err) {
      out.textContent = `refused: ${err.message}`;
    }
    refresh();
  });
  window.addEventListener("hashchange", refresh);
}

wire();
tick();
