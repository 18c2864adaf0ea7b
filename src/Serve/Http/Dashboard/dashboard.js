// The Serve dashboard: polls the admin API every second and redraws. Every value goes into the page through
// textContent (never innerHTML), so names and error messages cannot inject markup.
"use strict";
(function () {
  const api = "api/serve/applications";
  const tokenKey = "serve-admin-token";
  const pollMs = 1000;
  const shownErrors = 10;
  let timer = null;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const fmt = (n, digits) => (n === null || n === undefined) ? "–" : Number(n).toFixed(digits);
  const pct = (r) => (r === null || r === undefined) ? "–" : (r * 100).toFixed(r > 0 && r < 0.01 ? 2 : 1) + "%";
  const time = (t) => new Date(t).toLocaleTimeString();

  function sparkline(title, series) {
    const w = 110, h = 30, svgNs = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    let max = 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    if (max <= 0) max = 1;
    for (const s of series) {
      const n = s.values.length, points = [];
      s.values.forEach((v, i) => {
        if (v === null) return;
        points.push(`${(i * (w - 2) / Math.max(1, n - 1) + 1).toFixed(1)},${(h - 2 - v / max * (h - 4)).toFixed(1)}`);
      });
      const line = document.createElementNS(svgNs, "polyline");
      line.setAttribute("class", s.cls);
      line.setAttribute("points", points.join(" "));
      svg.append(line);
    }
    return el("span", { class: "chart", title }, title, svg);
  }

  function deploymentRows(app, d) {
    const m = d.metrics || { last_minute: {} }, last = m.last_minute || {};
    const share = [d.num_cpus ? `${d.num_cpus} CPU` : null, d.num_gpus ? `${d.num_gpus} GPU` : null].filter(Boolean).join(", ") || "–";
    const scaling = d.autoscaling ? ` (autoscaling ${d.autoscaling.min_replicas}–${d.autoscaling.max_replicas})` : "";
    const rows = [el("tr", { class: "deployment", "data-deployment": `${app.name}/${d.name}` },
      el("td", null, el("strong", null, d.name), d.is_ingress ? " (ingress)" : ""),
      el("td", { class: `status ${d.status}` }, d.status),
      el("td", { class: "num replicas" }, `${d.running_replicas}/${d.target_replicas}`, scaling),
      el("td", { class: "num" }, d.ongoing_requests, " / ", d.queued_requests),
      el("td", null, share),
      el("td", { class: "mono" }, d.version),
      el("td", { class: "num" }, fmt(last.requests_per_second, 2)),
      el("td", { class: "num" }, pct(last.error_rate)),
      el("td", { class: "num" }, fmt(last.p50_ms, 1), " / ", fmt(last.p99_ms, 1)),
      el("td", { class: "charts" },
        sparkline("req/s", [{ cls: "rps", values: m.requests_per_second || [] }]),
        sparkline("errors", [{ cls: "err", values: m.error_rate || [] }]),
        sparkline("p50/p99 ms", [{ cls: "p99", values: m.p99_ms || [] }, { cls: "p50", values: m.p50_ms || [] }])))];
    if (d.message)
      rows.push(el("tr", { class: "reason" }, el("td", { colspan: 10, class: "message" }, d.message)));
    for (const r of d.replicas) {
      const where = [r.node, r.cpu_threads ? `${r.cpu_threads} thread(s)` : null, r.gpu, r.load_context !== "Default" ? r.load_context : null]
        .filter(Boolean).join(" · ");
      rows.push(el("tr", { class: "replica", "data-replica": r.replica_id },
        el("td", { class: "mono" }, r.replica_id),
        el("td", { class: `status ${r.state}` }, r.state),
        el("td", null),
        el("td", { class: "num" }, r.ongoing_requests),
        el("td", { colspan: 2 }, where),
        el("td", { colspan: 4, class: "mono" }, r.version)));
    }
    return rows;
  }

  function renderApps(doc) {
    const apps = doc.applications || [];
    const sections = apps.map((app) => el("div", { class: "app", "data-application": app.name },
      el("h2", null, el("span", null, app.name), el("span", { class: "route" }, app.route_prefix),
        el("span", { class: `status ${app.status}` }, app.status)),
      // The application's message joins its deployments' reasons, which their rows show already.
      app.message && !app.deployments.some((d) => d.message) ? el("p", { class: "message" }, app.message) : null,
      el("table", null,
        el("thead", null, el("tr", null, ...["Deployment", "Status", "Replicas", "Ongoing / queued", "CPU / GPU", "Version",
          "Req/s (1 min)", "Errors", "p50 / p99 ms", "Last 5 minutes"].map((h) => el("th", null, h)))),
        el("tbody", null, ...app.deployments.flatMap((d) => deploymentRows(app, d))))));
    $("applications").replaceChildren(...(sections.length ? sections : [el("p", { class: "empty" }, "No applications are running.")]));
    const healthy = apps.filter((a) => a.status === "HEALTHY").length;
    $("summary").textContent = `${apps.length} application(s), ${healthy} healthy`;
  }

  function renderTable(id, items, row, empty) {
    const body = $(id).tBodies[0];
    body.replaceChildren(...(items.length ? items.map(row) : [el("tr", null, el("td", { colspan: 6, class: "empty" }, empty))]));
  }

  function render(doc) {
    renderApps(doc);
    renderTable("errors", (doc.recent_errors || []).slice(-shownErrors).reverse(), (e) => el("tr", { "data-request-id": e.request_id },
      el("td", null, time(e.time)), el("td", { class: "mono" }, e.request_id), el("td", null, `${e.application} / ${e.deployment}`),
      el("td", { class: "mono" }, `${e.method} ${e.path}`), el("td", { class: "error" }, e.status_code), el("td", null, e.error)), "No failed requests.");
    renderTable("decisions", (doc.autoscaler_decisions || []).slice().reverse(), (a) => el("tr", null,
      el("td", null, time(a.time)), el("td", null, `${a.application} / ${a.deployment}`),
      el("td", null, `${a.from_replicas} → ${a.to_replicas}`), el("td", { class: "num" }, fmt(a.load, 2))), "No autoscaling decisions yet.");
  }

  async function poll() {
    const token = sessionStorage.getItem(tokenKey);
    const updated = $("updated");
    try {
      const response = await fetch(api, { cache: "no-store", headers: token ? { Authorization: `Bearer ${token}` } : {} });
      if (response.status === 401) {
        sessionStorage.removeItem(tokenKey);
        $("token-form").hidden = false;
        $("token-error").textContent = token ? "That token was refused." : "";
        updated.textContent = "Waiting for the admin access token.";
        return;
      }
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      $("token-form").hidden = true;
      render(await response.json());
      updated.className = "";
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      updated.className = "failed";
      updated.textContent = `Cannot reach the admin API: ${e.message}`;
    } finally {
      clearTimeout(timer);
      timer = setTimeout(poll, pollMs);
    }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(tokenKey, $("token").value);
    $("token").value = "";
    poll();
  });
  poll();
})();
