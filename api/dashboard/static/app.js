// Backburner dashboard: small progressive enhancements. Every page works without this file.
"use strict";

// Confirm destructive form posts (data-confirm="question").
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  for (const button of form.querySelectorAll("button")) button.disabled = true;
});

// Check JSON payloads before they are sent.
for (const area of document.querySelectorAll("textarea[data-json]")) {
  const form = area.form;
  const error = form.querySelector(".field-error");
  form.addEventListener("submit", (event) => {
    try {
      if (area.value.trim()) JSON.parse(area.value);
      error.hidden = true;
    } catch (problem) {
      event.preventDefault();
      event.stopImmediatePropagation();
      error.textContent = "Not valid JSON: " + problem.message;
      error.hidden = false;
      for (const button of form.querySelectorAll("button")) button.disabled = false;
    }
  }, true);
}

// Runs page: refresh the first page's rows every few seconds while the tab is visible.
const rows = document.getElementById("rows");
if (rows && rows.dataset.refresh) {
  const refresh = async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(rows.dataset.refresh, { credentials: "same-origin" });
      if (response.ok && !response.redirected) rows.innerHTML = await response.text();
    } catch (_) { /* offline for a moment: try again next tick */ }
  };
  setInterval(refresh, 3000);
}

// One run: status, progress and log lines live over Server-Sent Events (/api/runs/{id}/events).
const runBox = document.getElementById("run");
if (runBox && runBox.dataset.active === "1") {
  const id = runBox.dataset.run;
  const log = document.getElementById("log");
  const logEmpty = document.getElementById("log-empty");
  const logCount = document.getElementById("log-count");
  const progressBox = document.getElementById("progress");
  const status = document.getElementById("status");
  const attemptText = document.getElementById("attempt-text");
  let lines = Number(runBox.dataset.nextLine || 0);
  const after = lines - 1;
  const source = new EventSource(`/api/runs/${encodeURIComponent(id)}/events?last_event_id=${after}`);

  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;

  source.addEventListener("line", (event) => {
    const line = JSON.parse(event.data);
    const follow = atBottom();
    const item = document.createElement("li");
    item.className = `lvl-${String(line.level || "info").toLowerCase()} st-${line.stream}`;
    item.dataset.n = line.n;
    const time = document.createElement("span");
    time.className = "log-time";
    time.textContent = new Date(line.t * 1000).toISOString().slice(11, 23);
    const meta = document.createElement("span");
    meta.className = "log-meta";
    meta.textContent = `#${line.attempt} ${line.stream === "log" ? line.level : line.stream}`;
    const text = document.createElement("span");
    text.className = "log-text";
    text.textContent = line.line;
    item.append(time, meta, text);
    log.append(item);
    log.hidden = false;
    logEmpty.hidden = true;
    lines = line.n + 1;
    logCount.textContent = `${lines} line${lines === 1 ? "" : "s"} · live`;
    if (follow) log.scrollTop = log.scrollHeight;
  });

  source.addEventListener("run", (event) => {
    const run = JSON.parse(event.data);
    if (run.started_at && !run.finished_at) duration.dataset.since = run.started_at;
    status.textContent = run.status;
    status.className = `badge s-${run.status}`;
    attemptText.textContent = `attempt ${run.attempt} of ${run.max_attempts}`;
    const p = run.progress || {};
    const bar = progressBox.querySelector("progress");
    const text = progressBox.querySelector(".progress-text");
    if (p.done !== null && p.done !== undefined) {
      if (p.total) {
        bar.max = 100;
        bar.value = Math.max(0, Math.min(100, (100 * p.done) / p.total));
      } else {
        bar.removeAttribute("value");
      }
      text.textContent = `${p.done}${p.total ? " / " + p.total : ""}${p.message ? " · " + p.message : ""}`;
    }
  });

  // The duration so far keeps counting while the run is active.
  const duration = document.getElementById("duration");
  const tick = () => {
    if (!duration.dataset.since) return;
    const seconds = (Date.now() - Date.parse(duration.dataset.since)) / 1000;
    const whole = Math.round(seconds);
    duration.textContent = seconds < 60 ? `${seconds.toFixed(1)} s`
      : `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
  };
  const ticker = window.setInterval(tick, 1000);

  source.addEventListener("end", () => {
    window.clearInterval(ticker);
    source.close();
    // The run is over: the server renders the result, artifacts and deliveries.
    window.setTimeout(() => window.location.replace(`/runs/${encodeURIComponent(id)}`), 300);
  });
}
