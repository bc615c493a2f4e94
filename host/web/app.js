// arcly web page: polls the control plane and draws the streams and events.
// The token (when the hub wants one) is kept in localStorage; it can also be
// given once as #token=… in the address (then removed from it).
"use strict";

const REFRESH_MS = 2000;
const THUMB_MS = 2000;
let token = localStorage.getItem("arcly-token") || "";
if (location.hash.startsWith("#token=")) {
  token = decodeURIComponent(location.hash.slice(7));
  localStorage.setItem("arcly-token", token);
  history.replaceState(null, "", location.pathname);
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    document.getElementById("login").hidden = false;
    throw new Error("a token is needed");
  }
  return response;
}

function setStatus(text, error) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

function kbit(bps) {
  return bps >= 1e6 ? (bps / 1e6).toFixed(1) + " Mbit/s" : Math.round(bps / 1000) + " kbit/s";
}

const rows = new Map();  // key -> { tr, img, lastThumb }

function rowFor(key) {
  let row = rows.get(key);
  if (row) return row;
  const tr = document.createElement("tr");
  tr.dataset.key = key;
  tr.innerHTML =
    '<td><img class="thumb" alt=""></td><td class="key"></td><td class="state"></td>' +
    '<td class="codec"></td><td class="num bitrate"></td><td class="num fps"></td>' +
    '<td class="num subs"></td><td class="num cache"></td>' +
    '<td><button class="event" type="button">Record event</button></td>';
  tr.querySelector(".key").textContent = key;
  tr.querySelector("button.event").addEventListener("click", () => recordEvent(key));
  const img = tr.querySelector("img.thumb");
  img.addEventListener("load", () => {
    img.dataset.loaded = img.naturalWidth + "x" + img.naturalHeight;
    img.dataset.count = String(Number(img.dataset.count || 0) + 1);
  });
  document.querySelector("#streams tbody").appendChild(tr);
  row = { tr, img, lastThumb: 0, url: "" };
  rows.set(key, row);
  return row;
}

// Thumbnails go through fetch (an <img> cannot send the token) into a blob URL.
async function refreshThumb(key, row) {
  const now = Date.now();
  if (now - row.lastThumb < THUMB_MS) return;
  row.lastThumb = now;
  try {
    const r = await api("/v1/streams/" + key + "/snapshot.jpg?width=320");
    if (!r.ok) return;
    const url = URL.createObjectURL(await r.blob());
    if (row.url) URL.revokeObjectURL(row.url);
    row.url = url;
    row.img.src = url;
  } catch (e) { /* the next round tries again */ }
}

async function refreshStreams() {
  const [streams, workers] = await Promise.all([
    api("/v1/streams").then((r) => r.json()),
    api("/v1/workers").then((r) => r.json()),
  ]);
  const seen = new Set();
  for (const s of streams.streams) {
    seen.add(s.key);
    const row = rowFor(s.key);
    const state = s.publisher ? s.publisher.state : "publishing";
    const video = s.tracks.find((t) => t.kind === "video") || s.tracks[0];
    const cells = row.tr;
    cells.querySelector(".state").textContent = state;
    cells.querySelector(".state").className = "state state-" + state;
    cells.querySelector(".codec").textContent = s.tracks.map((t) => t.codec).join(" + ");
    cells.querySelector(".bitrate").textContent = kbit(s.bitrate_bps);
    cells.querySelector(".fps").textContent = s.fps.toFixed(1);
    cells.querySelector(".subs").textContent = s.subscribers;
    cells.querySelector(".cache").textContent = (s.cache.window_held_ms / 1000).toFixed(1) + " s";
    row.tr.dataset.codec = video ? video.codec : "";
    refreshThumb(s.key, row);
  }
  for (const [key, row] of rows) {
    if (!seen.has(key)) {
      row.tr.remove();
      if (row.url) URL.revokeObjectURL(row.url);
      rows.delete(key);
    }
  }
  document.getElementById("no-streams").hidden = seen.size > 0;
  const down = workers.workers.filter((w) => w.state !== "live" && w.state !== "listening");
  setStatus(seen.size + " stream(s)" + (down.length ? ", " + down.length + " source(s) down" : ""),
            down.length > 0);
}

async function refreshEvents() {
  const events = (await api("/v1/events").then((r) => r.json())).events;
  const body = document.querySelector("#events tbody");
  body.textContent = "";
  for (const e of events.slice(-20).reverse()) {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    tr.dataset.state = e.state;
    for (const text of [
      new Date(e.created_unix_ms).toLocaleTimeString(), e.key, e.label, e.state,
      e.pre_obtained === null ? "" : e.pre_obtained.toFixed(1) + " s", e.file,
    ]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

async function recordEvent(key) {
  try {
    const r = await api("/v1/events", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key, pre: 5, post: 5, label: "button" }),
    });
    const answer = await r.json();
    setStatus(r.ok ? "event " + answer.id + " recording" : "event refused: " + answer.error, !r.ok);
    refreshEvents();
  } catch (e) {
    setStatus("event failed: " + e.message, true);
  }
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token").value;
  localStorage.setItem("arcly-token", token);
  document.getElementById("login").hidden = true;
});

async function tick() {
  try {
    await refreshStreams();
    await refreshEvents();
  } catch (e) {
    setStatus(e.message, true);
  }
  setTimeout(tick, REFRESH_MS);
}
tick();
