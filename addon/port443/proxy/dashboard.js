// port443 dashboard: sort and search the tables; on the live page, refresh the parts and send the actions.
// Everything shown comes from the proxy, already escaped; this script only moves nodes and sets textContent.
"use strict";
function port443Dashboard() {
  const body = document.body;
  const live = body.dataset.live === "1";
  const csrf = body.dataset.csrf || "";
  const sorts = {}; // table name -> [column, direction]
  const searches = {}; // table name -> text
  const REFRESH_MS = 5000;

  function key(cell, kind) {
    const raw = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim().toLowerCase();
    return kind === "num" ? Number(raw) : raw;
  }

  function applyTable(table) {
    const name = table.dataset.table;
    const tbody = table.tBodies[0];
    if (!tbody || !table.tHead) return;
    const heads = table.tHead.rows[0].cells;
    const sort = sorts[name];
    if (sort && heads[sort[0]]) {
      const [column, direction] = sort;
      const kind = heads[column].dataset.kind;
      const rows = Array.from(tbody.rows);
      rows.sort((a, b) => {
        const x = key(a.cells[column], kind);
        const y = key(b.cells[column], kind);
        return (x < y ? -1 : x > y ? 1 : 0) * direction;
      });
      tbody.append(...rows);
      for (const th of heads) th.removeAttribute("aria-sort");
      heads[column].setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
    }
    const query = (searches[name] || "").trim().toLowerCase();
    for (const row of tbody.rows) row.hidden = query !== "" && !row.textContent.toLowerCase().includes(query);
  }

  function applyAll() {
    document.querySelectorAll("table.data").forEach(applyTable);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.sort");
    if (!button) return;
    const th = button.closest("th");
    const table = button.closest("table");
    const name = table.dataset.table;
    const current = sorts[name];
    const first = th.dataset.kind === "num" ? -1 : 1; // numbers: biggest first
    sorts[name] = [th.cellIndex, current && current[0] === th.cellIndex ? -current[1] : first];
    applyTable(table);
  });

  document.addEventListener("input", (event) => {
    const box = event.target.closest("input.search");
    if (!box) return;
    searches[box.dataset.table] = box.value;
    document.querySelectorAll("table.data").forEach((t) => {
      if (t.dataset.table === box.dataset.table) applyTable(t);
    });
  });

  if (!live) {
    applyAll();
    return;
  }

  const toastBox = document.getElementById("toast");
  let toastTimer = 0;
  function toast(text, error) {
    toastBox.textContent = text;
    toastBox.classList.toggle("error", Boolean(error));
    toastBox.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toastBox.hidden = true; }, 6000);
  }

  function setLive(ok) {
    const pill = document.getElementById("live");
    if (!pill) return;
    pill.classList.toggle("stale", !ok);
    pill.textContent = ok ? "live" : "not updating";
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const answer = await fetch("/parts", { credentials: "same-origin", cache: "no-store" });
      if (answer.status === 401) {
        location.reload(); // the session ended: show the sign-in page
        return;
      }
      if (!answer.ok) throw new Error(String(answer.status));
      const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
      for (const fresh of doc.querySelectorAll("[data-part]")) {
        const old = document.querySelector(`[data-part="${fresh.dataset.part}"]`);
        if (old) old.replaceWith(document.importNode(fresh, true));
      }
      applyAll();
      setLive(true);
      body.dataset.refreshed = String(Date.now());
    } catch (e) {
      setLive(false);
    } finally {
      busy = false;
    }
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.acts");
    if (!form) return;
    event.preventDefault();
    const button = event.submitter;
    const data = new URLSearchParams(new FormData(form, button));
    const url = (button && button.getAttribute("formaction")) || form.getAttribute("action");
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const answer = await fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      });
      const said = await answer.json().catch(() => ({}));
      toast(said.message || (answer.ok ? "Done." : `Refused (${answer.status}).`), !answer.ok);
    } catch (e) {
      toast("The proxy did not answer.", true);
    }
    await refresh();
  });

  applyAll();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", port443Dashboard);
else port443Dashboard();
