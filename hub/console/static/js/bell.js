// The alarm sound: a two-tone beep made with Web Audio (no sound file), every
// 1.5 s while any alarm is in state "raised". Browsers keep audio suspended
// until the person has interacted with the page: `unlock()` is called from the
// login (a click or Enter, a user gesture); if audio is still not running when
// an alarm needs it, a banner asks for one click. document.body.dataset.sound
// tells which: "idle", "playing" or "blocked".
let context = null;
let timer = null;
let wanted = false;
let onBlocked = () => {};

export function init(blocked) { onBlocked = blocked; }

export function unlock() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  if (context === null) context = new Ctx();
  if (context.state !== "running") context.resume().then(refresh, refresh);
  refresh();
}

function beep() {
  if (context === null || context.state !== "running") { refresh(); return; }
  const now = context.currentTime;
  for (const [at, freq] of [[0, 880], [0.25, 660]]) {
    const osc = context.createOscillator();
    const gain = context.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.25, now + at);
    gain.gain.exponentialRampToValueAtTime(0.001, now + at + 0.22);
    osc.connect(gain).connect(context.destination);
    osc.start(now + at);
    osc.stop(now + at + 0.23);
  }
}

function refresh() {
  const running = context !== null && context.state === "running";
  let state = "idle";
  if (wanted) state = running ? "playing" : "blocked";
  document.body.dataset.sound = state;
  onBlocked(state === "blocked");
  if (state === "playing" && timer === null) {
    beep();
    timer = window.setInterval(beep, 1500);
  } else if (state !== "playing" && timer !== null) {
    window.clearInterval(timer);
    timer = null;
  }
}

// Sound on while `ringing` (some alarm is raised and not yet acknowledged).
export function ring(ringing) {
  wanted = ringing;
  refresh();
}
