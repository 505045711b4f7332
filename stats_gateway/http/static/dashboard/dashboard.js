// stats-gateway dashboard: reads this gateway's own /v2/stats endpoints with the key the
// user typed (kept in sessionStorage only) and draws the chosen metric with uPlot.
// No build step, no outside requests: the page's CSP allows this origin only.
"use strict";

(function () {
  const KEY_STORAGE = "statsGatewayKey";
  const $ = (id) => document.getElementById(id);
  const els = {
    keyForm: $("key-form"), key: $("api-key"), forget: $("forget-key"), keyState: $("key-state"),
    query: $("query"), domain: $("domain"), view: $("view"), metric: $("metric"),
    window: $("window"), bucket: $("bucket"), timezone: $("timezone"), timezones: $("timezones"),
    scope: $("scope"), scopeId: $("scope-id"), filters: $("filters"), by: $("breakdown-by"),
    limit: $("limit"), status: $("status"), error: $("error"), results: $("results"),
    chart: $("chart"), chartTitle: $("chart-title"), seriesBody: document.querySelector("#series-table tbody"),
    breakdownTitle: $("breakdown-title"), breakdownMetric: $("breakdown-metric"),
    breakdownShare: $("breakdown-share"), breakdownBody: document.querySelector("#breakdown tbody"),
  };
  let catalog = null;  // /dashboard/domains.json
  let chart = null;
  let generation = 0;  // a newer request makes older answers stale

  // --- small helpers ---------------------------------------------------------------------

  function setState(state) { document.body.dataset.state = state; }

  function option(value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label === undefined ? value : label;
    return o;
  }

  function fill(select, values, chosen, label) {
    select.replaceChildren(...values.map((v) => option(v, label ? label(v) : undefined)));
    if (values.includes(chosen)) select.value = chosen;
  }

  function cell(text, value, numeric) {
    const td = document.createElement("td");
    td.textContent = text;
    if (value !== undefined) td.dataset.value = value === null ? "" : String(value);
    if (numeric) td.className = "num";
    return td;
  }

  function formatNumber(value) {
    if (value === null || value === undefined) return "—";
    return Number(value).toLocaleString("en-US", { maximumFractionDigits: 6 });
  }

  function formatTime(ts, timezone) {
    try {
      return new Date(ts * 1000).toLocaleString("sv-SE", { timeZone: timezone }) + " " + timezone;
    } catch (e) {
      return new Date(ts * 1000).toISOString();
    }
  }

  function currentDomain() { return catalog.domains.find((d) => d.name === els.domain.value); }
  function currentView() {
    return currentDomain().views.find((v) => v.path === els.view.value) || currentDomain().views[0];
  }

  // --- the API key -----------------------------------------------------------------------

  function storedKey() { return sessionStorage.getItem(KEY_STORAGE) || ""; }

  function showKeyState() {
    els.keyState.textContent = storedKey() ? "key set for this tab" : "no key yet";
  }

  els.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = els.key.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    els.key.value = "";
    showKeyState();
    if (key) load();
  });
  els.forget.addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyState();
  });

  // --- the form, driven by the domain declarations ----------------------------------------

  function onDomainChange(saved) {
    const domain = currentDomain();
    fill(els.view, domain.views.map((v) => v.path), saved.view, (p) => p || "(main)");
    onViewChange(saved);
    fill(els.by, domain.breakdowns.map((b) => b.by), saved.by);
    els.filters.replaceChildren(...domain.filters.map((param) => {
      const label = document.createElement("label");
      label.textContent = param + " ";
      const input = document.createElement("input");
      input.dataset.param = param;
      input.spellcheck = false;
      input.value = saved[param] || "";
      label.append(input);
      return label;
    }));
  }

  function onViewChange(saved) {
    const view = currentView();
    fill(els.metric, view.metrics, saved.metric || view.primary);
  }

  function formState() {
    const state = {
      domain: els.domain.value, view: els.view.value, metric: els.metric.value,
      window: els.window.value, bucket: els.bucket.value, timezone: els.timezone.value.trim(),
      scope: els.scope.value, scopeId: els.scopeId.value.trim(), by: els.by.value,
      limit: els.limit.value,
    };
    for (const input of els.filters.querySelectorAll("input")) {
      if (input.value.trim()) state[input.dataset.param] = input.value.trim();
    }
    return state;
  }

  function savedState() {
    return Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  }

  function restore(saved) {
    fill(els.domain, catalog.domains.map((d) => d.name), saved.domain);
    onDomainChange(saved);
    fill(els.window, catalog.windows, saved.window || "7d");
    els.bucket.replaceChildren(option("", "auto"), ...catalog.bucketSizes.map((b) => option(b)));
    els.bucket.value = saved.bucket || "";
    els.timezone.value = saved.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    els.scope.value = saved.scope || "org";
    els.scopeId.value = saved.scopeId || "";
    els.scopeId.disabled = els.scope.value === "org";
    if (saved.limit) els.limit.value = saved.limit;
  }

  els.domain.addEventListener("change", () => onDomainChange({}));
  els.view.addEventListener("change", () => onViewChange({}));
  els.scope.addEventListener("change", () => { els.scopeId.disabled = els.scope.value === "org"; });
  els.query.addEventListener("submit", (event) => { event.preventDefault(); load(); });

  // --- requests ----------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, envelope) {
      const problems = (envelope && envelope.errors) || [];
      super((envelope && envelope.message) || `HTTP ${status}`);
      this.status = status;
      this.problems = problems;
    }
  }

  async function apiGet(path, params) {
    const response = await fetch(path + "?" + params.toString(), {
      headers: { Authorization: "Bearer " + storedKey(), Accept: "application/json" },
      credentials: "omit", cache: "no-store",
    });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new ApiFailure(response.status, body);
    return body;
  }

  function commonParams(state) {
    const params = new URLSearchParams({ scope: state.scope, window: state.window,
                                         timezone: state.timezone || "UTC" });
    if (state.scope !== "org") params.set("id", state.scopeId);
    if (state.bucket) params.set("timeBucketSize", state.bucket);
    for (const param of currentDomain().filters) {
      if (state[param]) params.set(param, state[param]);
    }
    return params;
  }

  function breakdownSort(state) {
    const breakdown = currentDomain().breakdowns.find((b) => b.by === state.by);
    return breakdown.sortable.includes(state.metric) ? state.metric : breakdown.primary;
  }

  async function load() {
    const state = formState();
    history.replaceState(null, "", "#" + new URLSearchParams(state).toString());
    hideError();
    if (!storedKey()) {
      showError(new ApiFailure(0, { message: "enter an API key first" }));
      return;
    }
    const mine = ++generation;
    setState("loading");
    els.status.textContent = "loading…";
    const seriesParams = commonParams(state);
    seriesParams.set("metric", state.metric);
    const sort = breakdownSort(state);
    const breakdownParams = commonParams(state);
    breakdownParams.set("sort", sort);
    breakdownParams.set("limit", state.limit);
    const base = "/v2/stats/" + encodeURIComponent(state.domain);
    try {
      const [series, breakdown] = await Promise.all([
        apiGet(base + (state.view ? "/" + encodeURIComponent(state.view) : ""), seriesParams),
        apiGet(base + "/breakdown/" + encodeURIComponent(state.by), breakdownParams),
      ]);
      if (mine !== generation) return;
      render(state, series, breakdown, sort);
      els.status.textContent = "";
      setState("ready");
    } catch (failure) {
      if (mine !== generation) return;
      els.status.textContent = "";
      showError(failure);
    }
  }

  // --- rendering -----------------------------------------------------------------------------

  function hideError() {
    els.error.hidden = true;
    els.error.replaceChildren();
  }

  function showError(failure) {
    const message = failure instanceof ApiFailure ? failure.message : "request failed: " + failure;
    const text = document.createElement("span");
    text.id = "error-message";
    text.textContent = message;
    els.error.replaceChildren(text);
    if (failure.problems && failure.problems.length) {
      const list = document.createElement("ul");
      for (const p of failure.problems) {
        const item = document.createElement("li");
        item.textContent = p.field + ": " + p.message;
        list.append(item);
      }
      els.error.append(list);
    }
    els.error.dataset.status = failure.status === undefined ? "" : String(failure.status);
    els.error.hidden = false;
    els.results.hidden = true;
    setState("error");
  }

  function render(state, series, breakdown, sort) {
    const meta = series.meta;
    const metric = meta.metric;
    const points = series.series.map((p) => ({ ts: p.ts, value: p[metric] }));
    window.__dashboardLastSeries = {
      domain: state.domain, view: state.view, metric, timezone: meta.timezone,
      timeBucketSize: meta.timeBucketSize, start: meta.start, end: meta.end,
      points, summary: series.summary,
    };
    window.__dashboardLastBreakdown = { by: state.by, sort, entities: breakdown.entities };
    els.results.hidden = false;
    els.chartTitle.textContent = `${state.domain}${state.view ? "/" + state.view : ""} · ${metric} · `
      + `${meta.window || ""} in ${meta.timeBucketSize} buckets (${meta.timezone})`;
    drawChart(metric, meta.timezone, points);
    for (const key of ["total", "avg", "min", "max", "p50", "p90"]) {
      const dd = $("summary-" + key);
      dd.textContent = formatNumber(series.summary[key]);
      dd.dataset.value = series.summary[key] === null ? "" : String(series.summary[key]);
    }
    els.seriesBody.replaceChildren(...points.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.ts = String(p.ts);
      tr.append(cell(formatTime(p.ts, meta.timezone)), cell(formatNumber(p.value), p.value, true));
      return tr;
    }));
    renderBreakdown(state, breakdown, sort);
  }

  function drawChart(metric, timezone, points) {
    if (chart) { chart.destroy(); chart = null; }
    const data = [points.map((p) => p.ts),
                  points.map((p) => (p.value === null ? null : Number(p.value)))];
    let tzDate = (ts) => new Date(ts * 1000);
    try {
      uPlot.tzDate(new Date(), timezone);
      tzDate = (ts) => uPlot.tzDate(new Date(ts * 1000), timezone);
    } catch (e) { /* a zone this browser lacks: show local time */ }
    const options = {
      width: Math.max(els.chart.clientWidth, 320), height: 320, tzDate,
      scales: { x: { time: true } },
      series: [{}, { label: metric, stroke: "#1f4e79", fill: "rgba(31,78,121,0.12)",
                     width: 2, points: { show: points.length < 60 } }],
      axes: [{}, { size: 70, values: (u, ticks) => ticks.map(formatNumber) }],
    };
    chart = new uPlot(options, data, els.chart);
  }

  window.addEventListener("resize", () => {
    if (chart) chart.setSize({ width: Math.max(els.chart.clientWidth, 320), height: 320 });
  });

  function renderBreakdown(state, breakdown, sort) {
    const declared = currentDomain().breakdowns.find((b) => b.by === state.by);
    const share = Boolean(declared && declared.share);
    els.breakdownTitle.textContent = `Top ${state.by} by ${sort} (${breakdown.meta.totalEntities} in all)`;
    els.breakdownMetric.textContent = sort;
    els.breakdownShare.hidden = !share;
    els.breakdownBody.replaceChildren(...breakdown.entities.map((e) => {
      const tr = document.createElement("tr");
      tr.dataset.entityId = e.entityId;
      tr.append(cell(e.entityId), cell(e.entityName === null ? "" : e.entityName),
                cell(formatNumber(e.totals[sort]), e.totals[sort], true));
      if (share) tr.append(cell(e.pct === null ? "—" : e.pct.toFixed(1) + " %", e.pct, true));
      return tr;
    }));
  }

  // --- start -----------------------------------------------------------------------------

  async function start() {
    if (typeof Intl.supportedValuesOf === "function") {
      els.timezones.replaceChildren(...Intl.supportedValuesOf("timeZone").map((z) => option(z)));
    }
    showKeyState();
    const response = await fetch("/dashboard/domains.json", { cache: "no-store" });
    catalog = await response.json();
    restore(savedState());
    setState("idle");
    if (storedKey() && location.hash) load();
  }

  start().catch((failure) => showError(failure));
})();
