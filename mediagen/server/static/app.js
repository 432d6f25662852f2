// The mediagen web UI. The request form is built from /api/schema (the GenerationRequest JSON schema) and
// the chosen model's capabilities, so only options the model supports are shown. Plain ES module, no build.

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
};

const MODE_LABELS = {
  t2i: "Text → Image", i2i: "Image → Image", inpaint: "Inpaint", outpaint: "Outpaint",
  t2v: "Text → Video", i2v: "Image → Video", v2v: "Video → Video",
};
const INPUT_MODES = new Set(["i2i", "inpaint", "outpaint", "i2v"]);
const VIDEO_MODES = new Set(["t2v", "i2v", "v2v"]);

// Schema fields drawn by dedicated widgets or panels rather than the generic form.
const SPECIAL = new Set(["prompt", "model", "mode", "image", "mask", "video", "extend", "controls", "references",
  "subject", "audio", "loras"]);
// Where a schema field applies (modes) and whether the model supports it (caps). Unlisted: always.
const FIELD_RULES = {
  negative_prompt: { caps: (c) => c.negative_prompt },
  width: { modes: ["t2i", "t2v"] },
  height: { modes: ["t2i", "t2v"] },
  strength: { modes: ["i2i", "v2v"] },
  mask_blur: { modes: ["inpaint", "outpaint"] },
  mask_blend: { modes: ["inpaint", "outpaint"] },
  inpaint_only_masked: { modes: ["inpaint"] },
  inpaint_padding: { modes: ["inpaint"] },
  frames: { modes: ["t2v", "i2v"], caps: (c) => c.max_frames },
  fps: { modes: ["t2v", "i2v", "v2v"] },
  sampler: { caps: (c) => c.samplers && c.samplers.length > 0 },
  guidance_end: { caps: (c) => c.default_guidance_end != null },
};
const ADVANCED = new Set(["sampler", "guidance_end", "mask_blur", "mask_blend", "inpaint_only_masked",
  "inpaint_padding"]);
// Defaults shown in the form come from the model's capabilities.
const CAP_DEFAULTS = {
  steps: "default_steps", guidance: "default_guidance", sampler: "default_sampler", width: "default_width",
  height: "default_height", strength: "default_strength", frames: "default_frames", fps: "default_fps",
  guidance_end: "default_guidance_end",
};
const STEP_SIZES = { guidance: 0.5, strength: 0.05, fps: 1, guidance_end: 0.05 };
const LABELS = { n: "Outputs", negative_prompt: "Negative prompt", mask_blur: "Mask blur (px)",
  mask_blend: "Mask blend", guidance_end: "Guided share of the steps",
  inpaint_only_masked: "Inpaint only the masked area", inpaint_padding: "Context around the mask (px)" };
// Form order; fields the schema gains later follow in schema order.
const ORDER = ["negative_prompt", "width", "height", "frames", "fps", "strength", "steps", "guidance", "n", "seed",
  "sampler", "guidance_end", "mask_blur", "mask_blend", "inpaint_only_masked", "inpaint_padding"];

const state = {
  schema: null, models: [], model: null, caps: null, mode: "t2i", fields: {},
  input: null, // {ref, width, height, bitmap}
  tool: "brush", current: null, source: null, selected: null, painted: false,
};

// -- HTTP ------------------------------------------------------------------------------------------
async function api(path, { method = "GET", json, form } = {}) {
  const headers = { "X-Mediagen-CSRF": "1" };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  const res = await fetch(path, { method, headers, body, credentials: "same-origin" });
  if (res.status === 401) { location.href = "/login"; throw new Error("log in first"); }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(errorText(data) || `${res.status} ${res.statusText}`);
  return data;
}

function errorText(data) {
  if (!data) return "";
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) {
    return data.detail.map((d) => `${(d.loc || []).filter((x) => x !== "body").join(".") || "request"}: ${
      String(d.msg).replace(/^Value error, /, "")}`).join("; ");
  }
  if (data.error && data.error.message) return data.error.message;
  return "";
}

async function uploadBlob(blob, name = "image.png") {
  const form = new FormData();
  form.append("file", blob, name);
  return api("/api/uploads", { method: "POST", form });
}

// -- models, tabs and the generated form ----------------------------------------------------------
async function loadModels() {
  const data = await api("/api/models");
  state.models = data.models;
  const sel = $("#model");
  sel.replaceChildren(...data.models.map((m) => el("option", { value: m.id, text: m.installed ? m.id : `${m.id} (download)` })));
  sel.value = data.default;
  await selectModel(data.default);
}

async function selectModel(id) {
  state.model = id;
  delete document.body.dataset.model;  // set again once the model's form is shown
  $("#form-error").textContent = "";
  try {
    state.caps = await api(`/api/models/${encodeURIComponent(id).replace(/%2F/g, "/")}/capabilities`);
  } catch (e) {
    state.caps = null;
    $("#model-modes").replaceChildren(el("span", { class: "chip bad", text: "unavailable" }));
    $("#tabs").replaceChildren();
    $("#form-error").textContent = e.message;
    $("#generate").disabled = true;
    return;
  }
  $("#generate").disabled = false;
  const modes = state.caps.modes;
  $("#model-modes").replaceChildren(...modes.map((m) => el("span", { class: "chip", text: m })));
  $("#filter-mode").replaceChildren(el("option", { value: "", text: "all modes" }),
    ...Object.keys(MODE_LABELS).map((m) => el("option", { value: m, text: m })));
  renderTabs();
  setMode(modes.includes(state.mode) ? state.mode : modes[0], false);  // a new model: its own defaults
  document.body.dataset.model = id;
}

function renderTabs() {
  $("#tabs").replaceChildren(...state.caps.modes.map((m) => el("button", {
    type: "button", role: "tab", class: "tab", "data-mode": m, "aria-selected": String(m === state.mode),
    text: MODE_LABELS[m] || m, onclick: () => setMode(m),
  })));
}

function setMode(mode, keepValues = true) {
  state.mode = mode;
  for (const t of document.querySelectorAll(".tab")) t.setAttribute("aria-selected", String(t.dataset.mode === mode));
  renderFields(keepValues);
  renderConditionPanels();
  const needsInput = INPUT_MODES.has(mode);
  $("#input-panel").hidden = !needsInput;
  $("#mask-tools").hidden = mode !== "inpaint";
  $("#extend-tools").hidden = mode !== "outpaint";
  $("#input-title").textContent = mode === "inpaint" ? "Image and mask" : mode === "outpaint" ? "Image to extend"
    : mode === "i2v" ? "First frame" : "Input image";
  drawEditor();
}

function unwrap(prop) {
  if (prop.anyOf) {
    const real = prop.anyOf.find((p) => p.type && p.type !== "null") || {};
    return { ...real, description: prop.description, default: prop.default, title: prop.title, nullable: true };
  }
  return prop;
}

function fieldApplies(name) {
  const rule = FIELD_RULES[name];
  if (!rule) return true;
  if (rule.modes && !rule.modes.includes(state.mode)) return false;
  if (rule.caps && !rule.caps(state.caps)) return false;
  return true;
}

function renderFields(keepValues = true) {
  const props = state.schema.properties;
  const keep = {};
  if (keepValues) {
    for (const [name, input] of Object.entries(state.fields)) keep[name] = input.type === "checkbox" ? input.checked : input.value;
  }
  state.fields = {};
  const main = [], advanced = [];
  const rank = (name) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
  const names = Object.keys(props).sort((a, b) => rank(a) - rank(b));
  for (const name of names) {
    const raw = props[name];
    if (SPECIAL.has(name) || !fieldApplies(name)) continue;
    const prop = unwrap(raw);
    const control = fieldControl(name, prop);
    if (!control) continue;
    (ADVANCED.has(name) ? advanced : main).push(control.wrap);
    state.fields[name] = control.input;
  }
  $("#fields").replaceChildren(...main);
  $("#advanced-fields").replaceChildren(...advanced);
  $("#advanced").hidden = advanced.length === 0;
  for (const [name, value] of Object.entries(keep)) {
    const input = state.fields[name];
    if (!input || value === undefined) continue;
    if (input.type === "checkbox") input.checked = value;
    else input.value = value;
  }
}

function fieldControl(name, prop) {
  const label = LABELS[name] || prop.title || name;
  const capDefault = CAP_DEFAULTS[name] ? state.caps[CAP_DEFAULTS[name]] : undefined;
  const value = capDefault ?? (prop.default ?? "");
  let input;
  if (name === "sampler") {
    input = el("select", { name }, ...state.caps.samplers.map((s) => el("option", { value: s, text: s })));
    input.value = value;
  } else if (Array.isArray(prop.enum)) {
    input = el("select", { name }, ...prop.enum.map((s) => el("option", { value: s, text: s })));
    input.value = value;
  } else if (prop.type === "boolean") {
    input = el("input", { type: "checkbox", name });
    input.checked = Boolean(prop.default);
    return { input, wrap: el("label", { class: "field check", title: prop.description || "" }, input, label) };
  } else if (prop.type === "integer" || prop.type === "number") {
    const isSize = name === "width" || name === "height";
    const min = isSize ? state.caps.min_size : prop.minimum ?? prop.exclusiveMinimum;
    let max = isSize ? state.caps.max_size : prop.maximum ?? (prop.exclusiveMaximum !== undefined
      ? prop.exclusiveMaximum - (prop.type === "integer" ? 1 : 0) : undefined);
    if (name === "frames" && state.caps.max_frames) max = state.caps.max_frames;
    const step = isSize ? state.caps.size_multiple : prop.type === "integer" ? 1 : STEP_SIZES[name] || "any";
    input = el("input", { type: "number", name, min, max, step, placeholder: name === "seed" ? "random" : "" });
    input.value = value === null ? "" : value;
  } else if (prop.type === "string") {
    input = name === "negative_prompt" ? el("textarea", { name, rows: 2 }) : el("input", { type: "text", name });
    input.value = value ?? "";
  } else {
    return null;
  }
  const help = prop.description ? el("small", { text: prop.description }) : null;
  return { input, wrap: el("label", { class: `field f-${name}`, title: prop.description || "" }, label, input, help) };
}

function fieldValues() {
  const out = {};
  for (const [name, input] of Object.entries(state.fields)) {
    if (input.type === "checkbox") { out[name] = input.checked; continue; }
    const v = input.value.trim();
    if (v === "") continue;
    const prop = unwrap(state.schema.properties[name]);
    out[name] = prop.type === "integer" ? parseInt(v, 10) : prop.type === "number" ? parseFloat(v) : v;
  }
  return out;
}

// -- condition panels: each joins the side panel area when the model supports it ---------------------
const CONDITION_PANELS = [
  { id: "controls", title: "Control maps", show: (c) => c.control_kinds.length > 0, list: "controls",
    kinds: (c) => c.control_kinds, kindKey: "kind" },
  { id: "references", title: "References", show: (c) => c.reference_roles.length > 0, list: "references",
    kinds: (c) => c.reference_roles, kindKey: "role" },
  { id: "subject", title: "Subject", show: (c) => c.subjects },
  { id: "audio", title: "Audio", show: (c, mode) => c.audio && VIDEO_MODES.has(mode) },
];
const conditions = { controls: [], references: [], subject: "", audio: false };

function renderConditionPanels() {
  const host = $("#condition-panels");
  host.replaceChildren();
  for (const p of CONDITION_PANELS) {
    if (!p.show(state.caps, state.mode)) continue;
    const body = el("div", { class: "panel-body" });
    host.append(el("section", { class: "panel", id: `panel-${p.id}` }, el("h3", { text: p.title }), body));
    if (p.list) renderListPanel(p, body);
    else if (p.id === "subject") {
      const input = el("input", { type: "text", placeholder: "name of a learned subject", value: conditions.subject });
      input.addEventListener("input", () => { conditions.subject = input.value.trim(); });
      body.append(input);
    } else if (p.id === "audio") {
      const box = el("input", { type: "checkbox" });
      box.checked = conditions.audio;
      box.addEventListener("change", () => { conditions.audio = box.checked; });
      body.append(el("label", { class: "field check" }, box, "Generate a soundtrack"));
    }
  }
}

function renderListPanel(p, body) {
  const items = conditions[p.list];
  const draw = () => {
    body.replaceChildren(...items.map((item, i) => {
      const kind = el("select", {}, ...p.kinds(state.caps).map((k) => el("option", { value: k, text: k })));
      kind.value = item[p.kindKey];
      kind.addEventListener("change", () => { item[p.kindKey] = kind.value; });
      const weight = el("input", { type: "number", min: 0, max: 2, step: 0.05, value: item.weight });
      weight.addEventListener("input", () => { item.weight = parseFloat(weight.value); });
      const file = el("input", { type: "file", accept: "image/*" });
      file.addEventListener("change", async () => {
        if (file.files[0]) item.image = (await uploadBlob(file.files[0], file.files[0].name)).ref;
      });
      return el("div", { class: "cond-row" }, kind, file, weight,
        el("button", { type: "button", text: "×", title: "remove", onclick: () => { items.splice(i, 1); draw(); } }));
    }), el("button", { type: "button", text: `Add ${p.title.toLowerCase().replace(/s$/, "")}`,
      onclick: () => { items.push({ [p.kindKey]: p.kinds(state.caps)[0], weight: 1, image: null }); draw(); } }));
  };
  draw();
}

function conditionValues() {
  const out = {};
  const supported = (id) => CONDITION_PANELS.find((p) => p.id === id).show(state.caps, state.mode);
  if (supported("controls")) out.controls = conditions.controls.filter((c) => c.image);
  if (supported("references")) out.references = conditions.references.filter((r) => r.image);
  if (supported("subject") && conditions.subject) out.subject = conditions.subject;
  if (supported("audio") && conditions.audio) out.audio = true;
  return out;
}

// -- input image, mask painting and the outpaint canvas --------------------------------------------
async function setInputFile(blob, name) {
  $("#drop-hint").textContent = "Uploading…";
  try {
    const up = await uploadBlob(blob, name);
    const bitmap = await createImageBitmap(blob);
    state.input = { ref: up.ref, width: up.width, height: up.height, bitmap };
    state.painted = false;
    const side = Math.max(up.width, up.height);
    const brush = $("#brush-size");
    brush.max = String(Math.max(8, Math.round(side / 2)));
    brush.value = String(Math.max(2, Math.round(side / 8)));
    $("#brush-size-out").textContent = brush.value;
    for (const s of ["left", "top", "right", "bottom"]) $(`#extend-${s}`).max = String(2 * (s === "left" || s === "right" ? up.width : up.height));
    $("#mask-canvas").getContext("2d").clearRect(0, 0, up.width, up.height);
    drawEditor(true);
  } catch (e) {
    $("#drop-hint").textContent = e.message;
    $("#drop-hint").hidden = false;
  }
}

function displayScale(w, h) {
  const box = $("#drop").getBoundingClientRect();
  const maxW = Math.max(160, box.width - 24), maxH = Math.max(160, Math.min(window.innerHeight * 0.5, 480));
  return Math.min(maxW / w, maxH / h, 8);
}

function drawEditor(resetMask = false) {
  const inp = state.input;
  const editor = $("#editor"), preview = $("#outpaint-canvas");
  $("#drop-hint").hidden = Boolean(inp);
  if (!inp || !INPUT_MODES.has(state.mode)) { editor.hidden = true; preview.hidden = true; return; }
  if (state.mode === "outpaint") {
    editor.hidden = true;
    preview.hidden = false;
    drawOutpaint();
    return;
  }
  preview.hidden = true;
  editor.hidden = false;
  const img = $("#image-canvas"), mask = $("#mask-canvas");
  if (img.width !== inp.width || img.height !== inp.height || resetMask) {
    img.width = mask.width = inp.width;
    img.height = mask.height = inp.height;
  }
  img.getContext("2d").drawImage(inp.bitmap, 0, 0);
  const s = displayScale(inp.width, inp.height);
  for (const c of [img, mask]) { c.style.width = `${inp.width * s}px`; c.style.height = `${inp.height * s}px`; }
  editor.style.width = `${inp.width * s}px`;
  editor.style.height = `${inp.height * s}px`;
  mask.hidden = state.mode !== "inpaint";
  editor.classList.toggle("painting", state.mode === "inpaint");
}

function extendValues() {
  const v = (s) => Math.max(0, parseInt($(`#extend-${s}`).value || "0", 10) || 0);
  return { left: v("left"), top: v("top"), right: v("right"), bottom: v("bottom") };
}

function drawOutpaint() {
  const inp = state.input;
  if (!inp) return;
  const e = extendValues();
  const w = inp.width + e.left + e.right, h = inp.height + e.top + e.bottom;
  const c = $("#outpaint-canvas");
  c.width = w;
  c.height = h;
  const ctx = c.getContext("2d");
  const cell = Math.max(4, Math.round(Math.max(w, h) / 24));
  for (let y = 0; y < h; y += cell) {
    for (let x = 0; x < w; x += cell) {
      ctx.fillStyle = ((x / cell + y / cell) % 2) ? "#2a2f3a" : "#343a47";
      ctx.fillRect(x, y, cell, cell);
    }
  }
  ctx.drawImage(inp.bitmap, e.left, e.top);
  ctx.strokeStyle = "#6ea8fe";
  ctx.lineWidth = Math.max(1, Math.round(Math.max(w, h) / 200));
  ctx.setLineDash([ctx.lineWidth * 4, ctx.lineWidth * 3]);
  ctx.strokeRect(e.left + 0.5, e.top + 0.5, inp.width - 1, inp.height - 1);
  const s = displayScale(w, h);
  c.style.width = `${w * s}px`;
  c.style.height = `${h * s}px`;
  $("#extend-size").textContent = `${inp.width}×${inp.height} → ${w}×${h}`;
}

function setupMaskPainting() {
  const mask = $("#mask-canvas"), cursor = $("#brush-cursor");
  let last = null;
  const toImage = (ev) => {
    const r = mask.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * (mask.width / r.width), y: (ev.clientY - r.top) * (mask.height / r.height) };
  };
  const stroke = (a, b) => {
    const ctx = mask.getContext("2d");
    ctx.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = "#ff4d6d";
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = parseInt($("#brush-size").value, 10);
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x + 0.01, b.y);
    ctx.stroke();
    state.painted = true;
  };
  const moveCursor = (ev) => {
    const r = mask.getBoundingClientRect();
    const size = parseInt($("#brush-size").value, 10) * (r.width / mask.width);
    cursor.hidden = false;
    cursor.style.width = cursor.style.height = `${size}px`;
    cursor.style.left = `${ev.clientX - r.left - size / 2}px`;
    cursor.style.top = `${ev.clientY - r.top - size / 2}px`;
  };
  mask.addEventListener("pointerdown", (ev) => {
    if (state.mode !== "inpaint") return;
    mask.setPointerCapture(ev.pointerId);
    last = toImage(ev);
    stroke(last, last);
  });
  mask.addEventListener("pointermove", (ev) => {
    moveCursor(ev);
    if (!last) return;
    const p = toImage(ev);
    stroke(last, p);
    last = p;
  });
  const end = () => { last = null; };
  mask.addEventListener("pointerup", end);
  mask.addEventListener("pointercancel", end);
  mask.addEventListener("pointerleave", () => { cursor.hidden = true; });
  const setTool = (tool) => {
    state.tool = tool;
    $("#tool-brush").classList.toggle("on", tool === "brush");
    $("#tool-eraser").classList.toggle("on", tool === "eraser");
    $("#tool-brush").setAttribute("aria-pressed", String(tool === "brush"));
    $("#tool-eraser").setAttribute("aria-pressed", String(tool === "eraser"));
  };
  $("#tool-brush").addEventListener("click", () => setTool("brush"));
  $("#tool-eraser").addEventListener("click", () => setTool("eraser"));
  $("#mask-clear").addEventListener("click", () => {
    mask.getContext("2d").clearRect(0, 0, mask.width, mask.height);
    state.painted = false;
  });
  $("#brush-size").addEventListener("input", () => { $("#brush-size-out").textContent = $("#brush-size").value; });
}

async function maskBlob() {
  const src = $("#mask-canvas");
  const data = src.getContext("2d").getImageData(0, 0, src.width, src.height);
  const out = new ImageData(src.width, src.height);
  let any = false;
  for (let i = 0; i < data.data.length; i += 4) {
    const a = data.data[i + 3]; // painted coverage: white = regenerate
    out.data[i] = out.data[i + 1] = out.data[i + 2] = a;
    out.data[i + 3] = 255;
    if (a) any = true;
  }
  if (!any) throw new Error("Paint the area to regenerate on the image first.");
  const c = document.createElement("canvas");
  c.width = src.width;
  c.height = src.height;
  c.getContext("2d").putImageData(out, 0, 0);
  return new Promise((resolve) => c.toBlob(resolve, "image/png"));
}

// -- submitting and following a job ------------------------------------------------------------------
async function submit(ev) {
  ev.preventDefault();
  const err = $("#form-error");
  err.textContent = "";
  const button = $("#generate");
  button.disabled = true;
  try {
    const req = { prompt: $("#prompt").value, model: state.model, mode: state.mode, ...fieldValues(), ...conditionValues() };
    if (INPUT_MODES.has(state.mode)) {
      if (!state.input) throw new Error("Upload an input image first.");
      req.image = state.input.ref;
    }
    if (state.mode === "inpaint") req.mask = (await uploadBlob(await maskBlob(), "mask.png")).ref;
    if (state.mode === "outpaint") {
      req.extend = extendValues();
      if (!Object.values(req.extend).some(Boolean)) throw new Error("Give at least one side some pixels to extend.");
    }
    track(await api("/api/jobs", { method: "POST", json: req }));
  } catch (e) {
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

function track(job) {
  if (state.source) state.source.close();
  state.current = job.id;
  showProgress(job);
  loadGallery();
  let lastStatus = job.status;
  const es = new EventSource(`/api/jobs/${job.id}/events`);
  state.source = es;
  es.addEventListener("job", (e) => {
    const view = JSON.parse(e.data);
    showProgress(view);
    if (view.status !== lastStatus) { lastStatus = view.status; pollHealth(); }
  });
  es.addEventListener("end", async () => {
    es.close();
    const done = await api(`/api/jobs/${job.id}`);
    showProgress(done);
    showResult(done);
    loadGallery();
    pollHealth();
  });
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  return s < 60 ? `${s.toFixed(s < 10 ? 1 : 0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function showProgress(job) {
  if (job.id !== state.current) return;
  const text = $("#progress-text"), fill = $("#bar-fill"), preview = $("#preview");
  const active = job.status === "queued" || job.status === "running";
  $("#cancel").hidden = !active;
  $("#cancel").disabled = job.cancel_requested;
  fill.className = job.status;
  let line = "";
  if (job.status === "queued") {
    line = job.queue_position ? `Queued: ${job.queue_position} job(s) ahead` : "Queued: starting next";
    fill.style.width = "0%";
  } else if (job.status === "running") {
    const p = job.progress;
    if (p) {
      fill.style.width = `${(p.fraction * 100).toFixed(1)}%`;
      line = `Step ${p.step}/${p.steps}` + (p.items > 1 ? ` · image ${p.item + 1}/${p.items}` : "") +
        (p.eta_s !== null && p.eta_s !== undefined ? ` · about ${fmtSeconds(p.eta_s)} left` : "");
    } else {
      line = job.phase === "loading" ? "Loading the model…" : "Starting…";
    }
    if (job.phase === "saving") line = "Saving…";
    if (job.cancel_requested) line = "Cancelling…";
  } else if (job.status === "succeeded") {
    fill.style.width = "100%";
    line = `Done in ${fmtSeconds(job.finished - job.started)}`;
  } else {
    fill.style.width = "100%";
    line = job.status === "cancelled" ? "Cancelled" : `Failed: ${job.error ? job.error.message : "unknown error"}`;
  }
  text.textContent = line;
  if (job.preview_url && active) {
    preview.src = job.preview_url;
    preview.hidden = false;
  } else if (!active) {
    preview.hidden = true;
  }
}

function outputMedia(o, cls) {
  if (o.kind === "video") return el("video", { src: o.url, controls: true, loop: true, class: cls });
  if (o.kind === "audio") return el("audio", { src: o.url, controls: true, class: cls });
  return el("img", { src: o.url, alt: `output ${o.index}`, class: cls });
}

function outputActions(job, o) {
  return el("div", { class: "row-actions" },
    o.kind === "image" ? el("button", { type: "button", text: "Use as input", onclick: () => useAsInput(o) }) : null,
    el("button", { type: "button", text: "Re-run", onclick: () => rerun(job, o.index) }),
    el("a", { class: "button", href: o.url, download: "", text: "Download" }));
}

function showResult(job) {
  const box = $("#results");
  box.dataset.job = job.id;
  $("#result-meta").textContent = job.status === "succeeded"
    ? `${job.mode} · ${job.model} · ${job.outputs.length} output(s)` : "";
  if (job.status !== "succeeded") {
    box.replaceChildren(el("p", { class: job.status === "failed" ? "error" : "hint",
      text: job.status === "failed" ? job.error.message : `The job was ${job.status}.` }));
    return;
  }
  box.replaceChildren(...job.outputs.map((o) => el("figure", { class: "result" },
    outputMedia(o, "result-media"),
    el("figcaption", {}, el("span", { class: "hint", text: `seed ${o.seed} · ${o.width}×${o.height}` }),
      outputActions(job, o)))));
}

async function useAsInput(o) {
  const blob = await (await fetch(o.url, { credentials: "same-origin" })).blob();
  if (!INPUT_MODES.has(state.mode)) {
    const target = ["i2i", "inpaint", "outpaint"].find((m) => state.caps.modes.includes(m));
    if (target) setMode(target);
  }
  await setInputFile(blob, "input.png");
  window.scrollTo({ top: 0, behavior: "smooth" });
}

async function rerun(job, index) {
  try {
    track(await api(`/api/jobs/${job.id}/rerun?output=${index}`, { method: "POST", json: {} }));
  } catch (e) {
    $("#form-error").textContent = e.message;
  }
}

// -- history -------------------------------------------------------------------------------------
async function loadGallery() {
  const q = new URLSearchParams({ limit: "60" });
  if ($("#search").value.trim()) q.set("q", $("#search").value.trim());
  if ($("#filter-mode").value) q.set("mode", $("#filter-mode").value);
  if ($("#filter-status").value) q.set("status", $("#filter-status").value);
  const data = await api(`/api/jobs?${q}`);
  const cards = data.jobs.map((job) => {
    const o = job.outputs[0];
    const thumb = o && o.kind === "image" ? el("img", { src: o.url, alt: job.prompt, loading: "lazy" })
      : el("div", { class: `placeholder ${job.status}`, text: job.status });
    return el("button", { type: "button", class: "card-thumb", "data-job": job.id, title: job.prompt,
      onclick: () => select(job) }, thumb,
    el("span", { class: "badges" }, el("span", { class: "badge", text: job.mode }),
      job.outputs.length > 1 ? el("span", { class: "badge", text: `×${job.outputs.length}` }) : null,
      job.status !== "succeeded" ? el("span", { class: `badge ${job.status}`, text: job.status }) : null),
    el("span", { class: "caption", text: job.prompt || "(no prompt)" }));
  });
  $("#gallery").replaceChildren(...(cards.length ? cards : [el("p", { class: "hint", text: "No jobs yet." })]));
}

async function select(job) {
  state.selected = job.id;
  const panel = $("#panel-details");
  panel.hidden = false;
  const recipe = el("pre", { class: "recipe", text: "…" });
  const req = job.request;
  const facts = [["mode", job.mode], ["model", job.model], ["status", job.status],
    ["steps", req.steps], ["guidance", req.guidance], ["sampler", req.sampler], ["size", req.width && `${req.width}×${req.height}`]]
    .filter(([, v]) => v !== null && v !== undefined && v !== "");
  $("#details").replaceChildren(...[
    ...job.outputs.map((o) => el("figure", { class: "detail-output" }, outputMedia(o, "detail-media"),
      el("figcaption", {}, el("span", { class: "hint", text: `seed ${o.seed}` }), outputActions(job, o)))),
    job.error ? el("p", { class: "error", text: job.error.message }) : null,
    el("p", { class: "detail-prompt", text: job.prompt || "(no prompt)" }),
    el("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })])),
    job.outputs.length ? el("details", { class: "recipe-box" }, el("summary", { text: "Recipe" }), recipe) : null,
    el("div", { class: "row-actions" }, el("button", { type: "button", class: "danger", text: "Delete",
      disabled: job.status === "queued" || job.status === "running",
      onclick: async () => { await api(`/api/jobs/${job.id}`, { method: "DELETE" }); panel.hidden = true; loadGallery(); } })),
  ].filter(Boolean));
  if (job.outputs.length) {
    const r = await api(job.outputs[0].recipe_url);
    recipe.textContent = JSON.stringify(r, null, 2);
  }
  panel.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// -- status ------------------------------------------------------------------------------------------
async function pollHealth() {
  try {
    const h = await api("/api/health");
    const w = h.worker;
    $("#health").className = `health ${w.state}`;
    $("#health .text").textContent = `worker ${w.state} · queue ${h.queue.active}/${h.queue.max}`;
  } catch (e) {
    $("#health").className = "health down";
    $("#health .text").textContent = "server unreachable";
  }
}

// -- start -------------------------------------------------------------------------------------------
async function main() {
  state.schema = await api("/api/schema");
  setupMaskPainting();
  $("#request-form").addEventListener("submit", submit);
  $("#prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("#request-form").requestSubmit();
  });
  $("#model").addEventListener("change", (e) => selectModel(e.target.value));
  $("#file").addEventListener("change", (e) => { if (e.target.files[0]) setInputFile(e.target.files[0], e.target.files[0].name); });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) setInputFile(f, f.name);
  });
  for (const s of ["left", "top", "right", "bottom"]) $(`#extend-${s}`).addEventListener("input", drawOutpaint);
  $("#cancel").addEventListener("click", async () => {
    if (state.current) showProgress(await api(`/api/jobs/${state.current}/cancel`, { method: "POST", json: {} }));
  });
  let searchTimer = null;
  $("#search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadGallery, 250); });
  $("#filter-mode").addEventListener("change", loadGallery);
  $("#filter-status").addEventListener("change", loadGallery);
  window.addEventListener("resize", () => drawEditor());
  pollHealth();
  setInterval(pollHealth, 3000);
  await loadModels();
  await loadGallery();
  document.body.dataset.ready = "1";
}

main().catch((e) => { $("#form-error").textContent = e.message; });
