"use strict";
// The phone page: the routine list, then one routine's player. Everything comes from the
// server's JSON; times are the plan's, followed against audio.currentTime.
const base = location.pathname.split("/").slice(0, 2).join("/");
const route = location.pathname.slice(base.length).match(/^\/r\/([^/]+)$/);
const $ = (id) => document.getElementById(id);
const INNER = new Set(["countdown", "halfway", "breath", "next-up"]);
const ICON_PLAY = "M8 5v14l11-7z";
const ICON_PAUSE = "M6 5h4v14H6zM14 5h4v14h-4z";

function clock(s) {
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60), r = s % 60;
  return m + ":" + String(r).padStart(2, "0");
}

async function getJSON(url, options) {
  const answer = await fetch(url, options);
  if (!answer.ok) throw new Error(await answer.text());
  return answer.json();
}

function fail(error) {
  $("error").hidden = false;
  $("error").textContent = String(error.message || error);
}

async function screeningFirst() {
  const screening = await getJSON(base + "/api/screening");
  if (screening.answered) return;
  const form = $("questions");
  form.replaceChildren();
  for (const [key, text] of Object.entries(screening.questions)) {
    const set = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = text;
    set.append(legend);
    for (const [label, value] of [["No", "no"], ["Yes", "yes"]]) {
      const option = document.createElement("label");
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: key, value: value, required: true });
      option.append(input, " " + label);
      set.append(option);
    }
    form.append(set);
  }
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save answers";
  form.append(save);
  $("screening").hidden = false;
  await new Promise((resolve, reject) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      const answers = {};
      for (const key of Object.keys(screening.questions)) {
        answers[key] = new FormData(form).get(key) === "yes";
      }
      try {
        await getJSON(base + "/api/screening", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ answers: answers }),
        });
        $("screening").hidden = true;
        resolve();
      } catch (error) { reject(error); }
    };
  });
}

async function home() {
  await screeningFirst();
  const data = await getJSON(base + "/api/routines");
  const list = $("routines");
  for (const r of data.routines) {
    const item = document.createElement("li");
    const link = document.createElement(r.refused ? "div" : "a");
    if (!r.refused) link.href = base + "/r/" + encodeURIComponent(r.id);
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = r.title;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = (r.refused ? "" : "about " + clock(r.duration) + " · " + r.exercises +
      " exercises · ") + (r.equipment.length ? r.equipment.join(", ") : "no equipment");
    link.append(title, meta);
    for (const left of r.left_out) {
      const warn = document.createElement("span");
      warn.className = "warn";
      warn.textContent = "Left out today: " + left.exercise + " (" + left.reason + ")";
      link.append(warn);
    }
    if (r.refused) {
      const warn = document.createElement("span");
      warn.className = "warn";
      warn.textContent = r.refused;
      link.append(warn);
    }
    item.append(link);
    list.append(item);
  }
  $("list").hidden = false;
}

// ---- the player ------------------------------------------------------------------------------

const state = { track: null, blocks: [], chapter: -1, session: null, seeked: false, last: 0,
                shown: null };
window.voicecoach = state;

function blocksOf(events, total) {
  const out = [];
  events.forEach((e, i) => {
    if (e.kind !== "hold" && e.kind !== "rest") return;
    let j = i + 1;
    while (j < events.length && INNER.has(events[j].kind)) j++;
    out.push({ kind: e.kind, start: e.start, end: j < events.length ? events[j].start : total });
  });
  return out;
}

function chapterAt(t) {
  const chapters = state.track.chapters;
  let found = 0;
  chapters.forEach((c, i) => { if (c.start <= t + 0.001) found = i; });
  return found;
}

function cueAt(t) {
  let cue = null, next = null;
  for (const e of state.track.events) {
    if (!e.text) continue;
    if (e.start <= t + 0.001) cue = e; else { next = e; break; }
  }
  return { cue: cue, next: next };
}

function send(body, beacon) {
  if (!state.session) return Promise.resolve();
  const payload = JSON.stringify(Object.assign({ session: state.session }, body));
  if (beacon && navigator.sendBeacon) {
    navigator.sendBeacon(base + "/api/events", payload);
    return Promise.resolve();
  }
  return fetch(base + "/api/events", { method: "POST", keepalive: true,
    headers: { "Content-Type": "application/json" }, body: payload }).catch(() => {});
}

function newSession() {
  const hex = Array.from({ length: 4 }, () => Math.floor(Math.random() * 0xffffffff)
    .toString(16).padStart(8, "0"));
  state.session = hex.join("-");
  return send({ event: "start", routine: state.track.id, key: state.track.key,
                position: $("audio").currentTime });
}

function enterChapter(index, t) {
  const chapters = state.track.chapters;
  const before = state.chapter;
  // Played through: playback crossed the end of the chapter it was in, without a jump.
  if (before >= 0 && index === before + 1 && !state.seeked && chapters[before].exercise) {
    send({ event: "done", exercise: chapters[before].title, position: t });
  }
  state.chapter = index;
  if (chapters[index].exercise) send({ event: "reached", exercise: chapters[index].title, position: t });
  document.querySelectorAll("#chapters button").forEach((b, i) =>
    b.classList.toggle("current", i === index));
  $("exercise").textContent = chapters[index].title;
  if ("mediaSession" in navigator && window.MediaMetadata) {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: chapters[index].title, artist: "voicecoach", album: state.track.title,
    });
  }
}

function tick() {
  const audio = $("audio");
  const t = audio.currentTime;
  const index = chapterAt(t);
  if (index !== state.chapter) enterChapter(index, t);
  state.seeked = false;
  const { cue, next } = cueAt(t);
  $("cue").textContent = cue ? cue.text : "";
  state.shown = { text: cue ? cue.text : "", start: cue ? cue.start : null, at: t };
  const block = state.blocks.find((b) => b.start <= t && t < b.end);
  $("countdown").textContent = block ? String(Math.ceil(block.end - t - 0.05)) : "";
  const chapters = state.track.chapters;
  const following = chapters[index + 1];
  $("next").textContent = following ? "Next: " + following.title :
    (next ? "Next: " + next.text : "");
  $("clock").textContent = clock(t) + " / " + clock(state.track.duration);
  const label = audio.paused ? "Play" : "Pause";
  if ($("play").getAttribute("aria-label") !== label) {
    $("play").setAttribute("aria-label", label);
    $("play").querySelector("path").setAttribute("d", audio.paused ? ICON_PLAY : ICON_PAUSE);
  }
  state.last = t;
}

function seek(t) {
  const audio = $("audio");
  state.seeked = true;
  audio.currentTime = Math.max(0, Math.min(t, state.track.duration));
  tick();
}

function jump(step) {
  const chapters = state.track.chapters;
  const t = $("audio").currentTime;
  let index = chapterAt(t);
  // "Previous" a few seconds into a chapter goes to its start, as music players do.
  if (step < 0 && t - chapters[index].start > 3) step = 0;
  index = Math.max(0, Math.min(chapters.length - 1, index + step));
  seek(chapters[index].start);
}

function mediaSession() {
  if (!("mediaSession" in navigator)) return;
  const audio = $("audio");
  const handlers = {
    play: () => audio.play(),
    pause: () => audio.pause(),
    nexttrack: () => jump(1),
    previoustrack: () => jump(-1),
    seekto: (details) => seek(details.seekTime),
    seekbackward: (details) => seek(audio.currentTime - (details.seekOffset || 10)),
    seekforward: (details) => seek(audio.currentTime + (details.seekOffset || 10)),
  };
  for (const [action, handler] of Object.entries(handlers)) {
    try { navigator.mediaSession.setActionHandler(action, handler); } catch (e) { /* unsupported */ }
  }
}

async function player(id) {
  $("home").hidden = false;
  $("player").hidden = false;
  await screeningFirst();
  const track = await getJSON(base + "/api/routines/" + id);
  state.track = track;
  state.blocks = blocksOf(track.events, track.duration);
  document.title = track.title + " · voicecoach";
  $("heading").textContent = track.title;
  $("status").textContent = clock(track.duration) + (track.equipment.length ?
    " · " + track.equipment.join(", ") : "");
  $("leftout").textContent = track.left_out.map((x) =>
    "Left out today: " + x.exercise + " (" + x.reason + ")").join(" ");
  const list = $("chapters");
  track.chapters.forEach((c, i) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.index = i;
    const at = document.createElement("span");
    at.className = "at";
    at.textContent = clock(c.start);
    button.append(c.title, at);
    button.onclick = () => { seek(c.start); $("audio").play().catch(fail); };
    item.append(button);
    list.append(item);
  });
  const audio = $("audio");
  audio.src = track.track;
  audio.addEventListener("timeupdate", tick);
  audio.addEventListener("seeking", () => { state.seeked = true; });
  audio.addEventListener("play", () => { if (!state.session) newSession(); tick(); });
  audio.addEventListener("pause", tick);
  audio.addEventListener("ended", () => {
    const last = track.chapters.length - 1;
    if (state.chapter === last && track.chapters[last].exercise && !state.seeked) {
      send({ event: "done", exercise: track.chapters[last].title, position: track.duration });
    }
    send({ event: "end", completed: true, position: track.duration });
    state.session = null;
    tick();
  });
  window.addEventListener("pagehide", () => {
    send({ event: "end", completed: false, position: audio.currentTime }, true);
    state.session = null;
  });
  $("play").onclick = () => (audio.paused ? audio.play().catch(fail) : audio.pause());
  $("prev").onclick = () => jump(-1);
  $("skip").onclick = () => jump(1);
  mediaSession();
  const frame = () => { if (!audio.paused) tick(); requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  tick();
  state.ready = true;
}

(route ? player(decodeURIComponent(route[1])) : home()).catch(fail);
