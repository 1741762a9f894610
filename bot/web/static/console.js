// The operator console's live queue: short polling of /web/operator/queue. The page works without it.
"use strict";

function text(node, value) { if (node) node.textContent = String(value); }

function pollQueue() {
  fetch("/web/operator/queue", { credentials: "same-origin" })
    .then((response) => (response.ok ? response.json() : {}))
    .then((providers) => {
      for (const [name, p] of Object.entries(providers)) {
        const row = document.querySelector(`tr[data-provider="${CSS.escape(name)}"]`);
        const section = document.querySelector(`section[data-queue="${CSS.escape(name)}"]`);
        for (const node of [row, section]) {
          if (!node) continue;
          text(node.querySelector(".queued"), p.queued);
          text(node.querySelector(".active"), p.active);
        }
        if (row) text(row.querySelector(".state"), p.state);
        const list = section && section.querySelector(".oldest");
        if (list) {
          list.replaceChildren(...(p.oldest.length ? p.oldest : [null]).map((j) => {
            const li = document.createElement("li");
            if (!j) { li.textContent = list.dataset.empty; return li; }
            const a = document.createElement("a");
            a.href = "/web/jobs/" + encodeURIComponent(j.id);
            a.textContent = j.id;
            li.append(a, " " + j.line);
            return li;
          }));
        }
      }
    })
    .finally(() => setTimeout(pollQueue, 3000));
}
document.addEventListener("DOMContentLoaded", () => setTimeout(pollQueue, 3000));
