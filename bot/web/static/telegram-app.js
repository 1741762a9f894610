// Inside Telegram: post the Web App's initData (from telegram-web-app.js when a page loaded it, else
// from the URL fragment Telegram opens the page with) and go to the gallery once signed in.
"use strict";

function initData() {
  const fromApp = window.Telegram?.WebApp?.initData;
  if (fromApp) return fromApp;
  return new URLSearchParams(location.hash.slice(1)).get("tgWebAppData") || "";
}

document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("telegram-status");
  const data = initData();
  if (!data) return;
  fetch("/web/telegram-app", {
    method: "POST", credentials: "same-origin", body: new URLSearchParams({ init_data: data }),
  })
    .then((response) => response.json())
    .then((answer) => {
      if (answer.ok) location.replace(answer.next);
      else status.textContent = answer.error;
    })
    .catch(() => { status.textContent = status.dataset.failed; });
});
