// tuneforge ui: the live chart (uPlot), the event streams (EventSource) and streamed chat answers.
// Plain JavaScript, no build step; htmx handles the forms.
"use strict";
window.tuneforge = (function () {
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"];

  function lossChart(el, seriesNames, withLr) {
    const series = [{ label: "step" }];
    seriesNames.forEach((name, i) =>
      series.push({ label: name, stroke: COLORS[i % COLORS.length], width: 2, scale: "loss", spanGaps: true }));
    const axes = [{}, { scale: "loss", label: "loss" }];
    if (withLr) {
      series.push({ label: "learning rate", stroke: "#9ca3af", dash: [4, 4], scale: "lr", spanGaps: true });
      axes.push({ scale: "lr", side: 1, grid: { show: false }, label: "learning rate", size: 70,
                  values: (u, ticks) => ticks.map(v => (v === 0 ? "0" : v.toExponential(1))) });
    }
    const opts = { width: Math.max(320, el.clientWidth || 800), height: 300, series, axes,
                   scales: { x: { time: false } } };
    const data = [[]].concat(series.slice(1).map(() => []));
    return new uPlot(opts, data, el);
  }

  // one run: x = step, loss, learning rate; records of other kinds (eval_*) are skipped here
  function runPage(el) {
    const points = { step: [], loss: [], lr: [] };
    const chart = lossChart(el, ["loss"], true);
    const count = document.getElementById("points");
    function add(r) {
      if (typeof r.loss !== "number" || typeof r.step !== "number") return;
      points.step.push(r.step); points.loss.push(r.loss);
      points.lr.push(typeof r.learning_rate === "number" ? r.learning_rate : null);
    }
    function draw() {
      chart.setData([points.step, points.loss, points.lr]);
      el.dataset.points = String(points.step.length);
      if (count) count.textContent = points.step.length + " logged steps" +
        (points.step.length ? ", last loss " + points.loss[points.loss.length - 1].toFixed(4) : "");
    }
    fetch(el.dataset.metrics).then(r => r.json()).then(records => {
      records.forEach(add); draw();
      if (el.dataset.live !== "yes") return;
      const seen = points.step.length;
      let skip = records.length;  // the stream starts from the file's first line: skip what we drew
      const source = new EventSource(el.dataset.events);
      source.addEventListener("metric", e => { if (skip > 0) { skip--; return; } add(JSON.parse(e.data)); draw(); });
      source.addEventListener("log", e => appendLog(e.data));
      source.addEventListener("state", e => showState(JSON.parse(e.data)));
      source.addEventListener("end", e => { source.close(); showState(JSON.parse(e.data)); el.dataset.ended = "yes";
        setTimeout(() => window.location.reload(), 1500); });
      el.dataset.streaming = "yes";
      void seen;
    });
  }

  function appendLog(text) {
    const log = document.getElementById("log");
    if (!log) return;
    const lines = (log.textContent + "\n" + text).split("\n");
    log.textContent = lines.slice(-400).join("\n");
    log.scrollTop = log.scrollHeight;
  }

  function showState(s) {
    const state = document.getElementById("state");
    if (state && s.state) { state.textContent = s.state; state.className = "state " + s.state; }
    const bar = document.getElementById("bar");
    if (bar && typeof s.done === "number") bar.style.width = (s.done * 100).toFixed(1) + "%";
    const text = document.getElementById("progress-text");
    if (text && typeof s.step === "number") text.textContent = "step " + s.step +
      (s.max_steps ? " of " + s.max_steps : "") +
      (s.seconds_left !== null && s.seconds_left !== undefined && s.state === "running" ? ", " + s.seconds_left + " s left" : "");
    const stop = document.getElementById("stop"), resume = document.getElementById("resume");
    if (stop) stop.disabled = s.state !== "running";
    if (resume) resume.disabled = !(s.state === "stopped" || s.state === "failed");
  }

  // several runs on one chart, aligned by step
  function comparePage(el, runs) {
    Promise.all(runs.map(name => fetch("/runs/" + name + "/metrics.json").then(r => r.json()))).then(all => {
      const steps = new Set();
      const byRun = all.map(records => {
        const m = new Map();
        records.forEach(r => { if (typeof r.loss === "number") { m.set(r.step, r.loss); steps.add(r.step); } });
        return m;
      });
      const xs = Array.from(steps).sort((a, b) => a - b);
      const chart = lossChart(el, runs, false);
      chart.setData([xs].concat(byRun.map(m => xs.map(x => (m.has(x) ? m.get(x) : null)))));
      el.dataset.points = String(xs.length);
    });
  }

  // a job (eval, export): its output as it is written
  function jobPage(el) {
    if (el.dataset.live !== "yes") return;
    const source = new EventSource(el.dataset.events);
    source.addEventListener("log", e => appendLog(e.data));
    source.addEventListener("end", e => { source.close(); el.dataset.ended = "yes";
      setTimeout(() => window.location.reload(), 800); });
  }

  // chat: POST the conversation, read the answer's pieces from the event stream
  async function ask(form, box, history) {
    const prompt = form.querySelector("[name=prompt]").value;
    if (!prompt.trim()) return;
    const turns = box.map(b => ({ run: b.dataset.run, el: b }));
    form.querySelector("button").disabled = true;
    await Promise.all(turns.map(async (t, i) => {
      const messages = history[i].concat([{ role: "user", content: prompt }]);
      const you = document.createElement("div"); you.className = "msg user"; you.textContent = prompt;
      const answer = document.createElement("div"); answer.className = "msg assistant streaming";
      t.el.querySelector(".turns").append(you, answer);
      const body = new URLSearchParams({ run: t.run, messages: JSON.stringify(messages),
        system: form.querySelector("[name=system]").value,
        max_new_tokens: form.querySelector("[name=max_new_tokens]").value });
      const reply = await fetch("/chat/stream", { method: "POST", body });
      const reader = reply.body.getReader(); const decoder = new TextDecoder(); let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const kind = (block.match(/^event: (.*)$/m) || [])[1];
          const data = block.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
          if (kind === "piece") answer.textContent += JSON.parse(data);
          if (kind === "error") { answer.textContent = JSON.parse(data); answer.classList.add("error"); }
        }
      }
      answer.classList.remove("streaming"); answer.classList.add("done");
      history[i] = messages.concat([{ role: "assistant", content: answer.textContent }]);
    }));
    form.querySelector("[name=prompt]").value = "";
    form.querySelector("button").disabled = false;
  }

  function chatPage(form) {
    const boxes = Array.from(document.querySelectorAll(".chatbox"));
    const history = boxes.map(() => []);
    form.addEventListener("submit", e => { e.preventDefault(); ask(form, boxes, history); });
    const reset = document.getElementById("reset");
    if (reset) reset.addEventListener("click", () => {
      history.forEach((_, i) => (history[i] = []));
      boxes.forEach(b => (b.querySelector(".turns").innerHTML = ""));
    });
  }

  function copy(button) {
    const text = document.getElementById(button.dataset.copy).textContent;
    const done = () => { button.textContent = "Copied"; setTimeout(() => (button.textContent = "Copy"), 1200); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, done);
    else { const r = document.createRange(); r.selectNodeContents(document.getElementById(button.dataset.copy));
      const s = window.getSelection(); s.removeAllRanges(); s.addRange(r); document.execCommand("copy"); done(); }
  }

  return { runPage, comparePage, jobPage, chatPage, copy };
})();
