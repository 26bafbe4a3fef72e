// storeedge staff dashboard: panels are HTML rendered by the gateway; this script
// only fetches them, listens to the gateway's server-sent events, and sends the
// staff actions (acknowledge an alert, resolve a review item) to the JSON API.
// No framework, no build step, nothing from a CDN.
// SPDX-License-Identifier: Apache-2.0
"use strict";

(function () {
  const COOKIE = "storeedge_token";
  const board = document.getElementById("board");
  const login = document.getElementById("login");
  const logout = document.getElementById("logout");
  const live = document.getElementById("live");
  const toast = document.getElementById("toast");
  const panels = new Map();
  document.querySelectorAll("[data-panel]").forEach((el) => panels.set(el.dataset.panel, el));
  const state = { shelf: sessionStorage.getItem("storeedge.shelf"), stream: null, ticks: 0 };
  const loading = new Map(); // panel -> "busy" | "again"
  const held = new Set(); // panels not redrawn while someone is filling in a field there

  function editing(el) {
    const active = document.activeElement;
    return Boolean(active && el.contains(active) && active.matches("select, input, textarea"));
  }

  function setToken(token) {
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = token
      ? `${COOKIE}=${token}; path=/; SameSite=Strict${secure}`
      : `${COOKIE}=; path=/; SameSite=Strict; Max-Age=0${secure}`;
  }

  function say(text, bad) {
    toast.textContent = text;
    toast.classList.toggle("bad", Boolean(bad));
    toast.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.hidden = true; }, 4000);
  }

  function signedOut(message) {
    if (state.stream) { state.stream.close(); state.stream = null; }
    board.hidden = true;
    logout.hidden = true;
    login.hidden = false;
    document.getElementById("signin-hint").hidden = false;
    live.textContent = "offline";
    live.className = "live off";
    document.getElementById("login-error").textContent = message || "";
    document.getElementById("token").focus();
  }

  async function load(name) {
    const el = panels.get(name);
    if (!el) return;
    if (editing(el)) { held.add(name); return; }
    if (loading.get(name)) { loading.set(name, "again"); return; }
    loading.set(name, "busy");
    try {
      let url = `/dashboard/panels/${name}`;
      if (name === "trace" && state.shelf) url += `?shelf=${encodeURIComponent(state.shelf)}`;
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.status === 401 || response.status === 403) {
        signedOut(response.status === 401 ? "That token was not accepted." : "This token may not see the dashboard.");
        return;
      }
      if (response.ok) {
        el.innerHTML = await response.text();
        el.dataset.loaded = String(Date.now());
      }
    } catch (err) {
      live.textContent = "reconnecting";
      live.className = "live off";
    } finally {
      const again = loading.get(name) === "again";
      loading.delete(name);
      if (again) load(name);
    }
  }

  function loadAll() { panels.forEach((_, name) => load(name)); }

  function connect() {
    if (state.stream) state.stream.close();
    const stream = new EventSource("/api/v1/stream", { withCredentials: true });
    state.stream = stream;
    stream.addEventListener("hello", () => {
      live.textContent = "live";
      live.className = "live on";
      loadAll(); // whatever changed while we were away
    });
    for (const name of panels.keys()) {
      if (name !== "trace") stream.addEventListener(name, () => load(name));
    }
    stream.addEventListener("tick", () => {
      state.ticks += 1;
      load("trace");
      if (state.ticks % 5 === 0) { load("devices"); load("coldchain"); }
    });
    stream.onerror = () => {
      live.textContent = "reconnecting";
      live.className = "live off";
      // 401/403 close the stream for good: find out whether the token is the reason.
      if (stream.readyState === EventSource.CLOSED) setTimeout(start, 2000);
    };
  }

  async function start() {
    const probe = await fetch("/dashboard/panels/alerts", { credentials: "same-origin" }).catch(() => null);
    if (!probe) { setTimeout(start, 2000); return; }
    if (probe.status === 401 || probe.status === 403) {
      signedOut(document.cookie.includes(`${COOKIE}=`) ? "That token was not accepted." : "");
      return;
    }
    login.hidden = true;
    document.getElementById("signin-hint").hidden = true;
    board.hidden = false;
    logout.hidden = false;
    loadAll();
    connect();
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let detail = "";
    try { detail = (await response.json()).detail; } catch (err) { detail = ""; }
    if (!response.ok) throw new Error(typeof detail === "string" ? detail : `HTTP ${response.status}`);
  }

  login.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(document.getElementById("token").value.trim());
    document.getElementById("token").value = "";
    start();
  });

  logout.addEventListener("click", () => { setToken(""); signedOut(""); });

  document.addEventListener("click", async (event) => {
    const ack = event.target.closest("[data-ack]");
    if (ack) {
      ack.disabled = true;
      try {
        await post(`/api/v1/alerts/${encodeURIComponent(ack.dataset.ack)}/ack`, { staff: "dashboard" });
        say("Alert acknowledged.");
      } catch (err) {
        say(`Could not acknowledge: ${err.message}`, true);
        ack.disabled = false;
      }
      load("alerts");
      return;
    }
    const shelf = event.target.closest("[data-shelf]");
    if (shelf) {
      state.shelf = shelf.dataset.shelf;
      sessionStorage.setItem("storeedge.shelf", state.shelf);
      load("trace");
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-trace-shelf]")) {
      state.shelf = event.target.value;
      sessionStorage.setItem("storeedge.shelf", state.shelf);
      load("trace");
    } else if (event.target.matches("form.review select[name=barcode]")) {
      const quantity = event.target.selectedOptions[0].dataset.quantity;
      if (quantity) event.target.form.elements.quantity.value = quantity;
    }
  });

  // A panel held while a field had the focus is redrawn once the focus has left it.
  document.addEventListener("focusout", () => {
    setTimeout(() => {
      for (const name of [...held]) {
        if (!editing(panels.get(name))) { held.delete(name); load(name); }
      }
    }, 500);
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.review");
    if (!form) return;
    event.preventDefault();
    const dismiss = event.submitter && event.submitter.value === "dismiss";
    const body = dismiss
      ? { dismiss: true, staff: "dashboard" }
      : {
          barcode: form.elements.barcode.value,
          quantity: Number(form.elements.quantity.value || 1),
          session_token: form.elements.session_token.value,
          staff: "dashboard",
        };
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await post(`/api/v1/review/${encodeURIComponent(form.dataset.review)}/resolve`, body);
      say(dismiss ? "Dismissed." : "Resolved.");
    } catch (err) {
      say(`Could not resolve: ${err.message}`, true);
      form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
    load("review");
    load("receipts");
    load("sessions");
  });

  start();
})();
