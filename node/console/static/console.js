// Corridor console: the only script the pages load (the Content-Security-Policy allows no other).
// It reads the overview's figures again every few seconds, shows times in the reader's local
// offset beside UTC, and copies hashes. Nothing here is needed to read a page or to act.
"use strict";

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    if (el.dataset.local) continue;
    const at = new Date(el.getAttribute("datetime"));
    if (isNaN(at)) continue;
    const minutes = -at.getTimezoneOffset();
    const sign = minutes >= 0 ? "+" : "-";
    const hh = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
    const mm = String(Math.abs(minutes) % 60).padStart(2, "0");
    const local = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
    el.dataset.local = "1";
    el.title = `local ${at.toLocaleString()} (UTC${sign}${hh}:${mm})`;
    const span = document.createElement("span");
    span.className = "local";
    span.textContent = ` (local ${local}, UTC${sign}${hh}:${mm})`;
    el.after(span);
  }
}

function copyButtons(root) {
  for (const button of root.querySelectorAll("button.copy")) {
    if (button.dataset.bound) continue;
    button.dataset.bound = "1";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "copied";
      } catch (e) {
        button.textContent = "select it";
      }
      setTimeout(() => { button.textContent = "copy"; }, 1500);
    });
  }
}

function live(el) {
  const url = el.dataset.live;
  const every = 1000 * Number(el.dataset.refreshS || 2);
  async function tick() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.redirected || response.status === 401) { window.location.reload(); return; }
      if (response.ok) {
        el.innerHTML = await response.text();
        localTimes(el);
        copyButtons(el);
        el.dataset.updated = String(Date.now());
      }
    } catch (e) {
      // The node did not answer this time: the figures stay as they were, and the next tick tries again.
    }
    setTimeout(tick, every);
  }
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  copyButtons(document);
  for (const el of document.querySelectorAll("[data-live]")) live(el);
});
