// Small progressive enhancements; every page works without them.
"use strict";

// "Copy prompt": copy the text of the element named by data-copy (the words it then shows come from
// the page, in its language: data-copied, data-copy-failed).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent;
  navigator.clipboard.writeText(text).then(
    () => { button.textContent = button.dataset.copied; },
    () => { button.textContent = button.dataset.copyFailed; });
});

// Live state of unfinished jobs: short polling of /web/jobs/state while any is unfinished.
function pollJobs() {
  const rows = [...document.querySelectorAll("[data-job]")].filter((el) => !el.dataset.terminal);
  const ids = [...new Set(rows.map((el) => el.dataset.job))];
  if (!ids.length) return;
  fetch("/web/jobs/state?ids=" + encodeURIComponent(ids.join(",")), { credentials: "same-origin" })
    .then((response) => (response.ok ? response.json() : {}))
    .then((states) => {
      let finished = false;
      for (const el of rows) {
        const s = states[el.dataset.job];
        if (!s) continue;
        const cell = el.classList.contains("state") ? el : el.querySelector(".state");
        cell.textContent = s.state_text + (s.terminal ? "" : " · " + s.progress + "%") + (s.error ? " · " + s.error : "");
        if (s.terminal) { el.dataset.terminal = "1"; finished = true; }
      }
      if (finished && document.querySelector("p.state[data-job]")) location.reload();
    })
    .finally(() => setTimeout(pollJobs, 2000));
}
document.addEventListener("DOMContentLoaded", () => setTimeout(pollJobs, 2000));
