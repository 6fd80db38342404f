// restoreae web page: upload → POST /api/restore → poll GET /api/jobs/{id} → show result rows.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("restore-form");
const fileInput = $("files");
const dropZone = $("drop-zone");
const button = $("restore-button");
const errorBox = $("error-box");
const progressPanel = $("progress-panel");
const progressBar = $("progress");
const progressText = $("progress-text");
const resultsBox = $("results");

let limits = { max_upload_bytes: 10 * 1024 * 1024, max_files: 16, max_image_side: 4096 };
let chosenFiles = [];
const downloadAll = $("download-all");
let lastFiles = []; // the files of the last request, for "Restore again"
let lastModel = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Errors are shown once, in English and Chinese like the rest of the page: request-level ones in
// the box at the top, a file's own error in its result card only.
function showError(message, zh) {
  errorBox.textContent = zh ? `${message}\n${zh}` : message;
  errorBox.hidden = !message;
}

// An error answer of the server: {detail, detail_zh}.
class ServerError extends Error {
  constructor(body, fallback) {
    super((body && body.detail) || fallback);
    this.zh = body && body.detail_zh;
  }
}

function megabytes(n) {
  return (n / (1024 * 1024)).toPrecision(3).replace(/\.?0+$/, "") + " MB";
}

function setFiles(files) {
  chosenFiles = Array.from(files);
  const list = $("file-list");
  list.textContent = chosenFiles.length
    ? chosenFiles.map((f) => `${f.name} (${Math.ceil(f.size / 1024)} KB)`).join(", ")
    : "No file chosen · 未选择文件";
  showError("");
  // Limits are checked here already, so nothing is sent that the server would refuse.
  const big = chosenFiles.filter((f) => f.size > limits.max_upload_bytes);
  if (chosenFiles.length > limits.max_files) {
    showError(
      `Too many files: at most ${limits.max_files} at a time.`,
      `文件过多：每次最多 ${limits.max_files} 个。`,
    );
  } else if (big.length) {
    showError(
      `Too large (over ${megabytes(limits.max_upload_bytes)}): ${big.map((f) => f.name).join(", ")}`,
      `文件过大（超过 ${megabytes(limits.max_upload_bytes)}）：${big.map((f) => f.name).join("，")}`,
    );
  }
}

async function loadSamples() {
  try {
    const response = await fetch("/api/samples");
    if (!response.ok) return;
    const { samples } = await response.json();
    const list = $("sample-list");
    for (const sample of samples) {
      const button = el(
        "button",
        { type: "button", class: "sample", title: `${sample.name} · ${sample.char}` },
        el("img", { src: sample.url, alt: `example ${sample.char}` }),
      );
      button.addEventListener("click", async () => {
        const blob = await (await fetch(sample.url)).blob();
        setFiles([new File([blob], sample.name, { type: blob.type })]);
        $("char").value = sample.char;
      });
      list.append(button);
    }
    $("samples").hidden = !samples.length;
  } catch {
    // The examples are optional: the page works without them.
  }
}

async function loadModels() {
  try {
    const response = await fetch("/api/models");
    const info = await response.json();
    limits = info;
    const select = $("model");
    select.replaceChildren();
    for (const model of info.models) {
      const option = el("option", { value: model.name }, `${model.name} (${model.file})`);
      if (model.default) option.selected = true;
      select.append(option);
    }
    if (!info.models.length) {
      showError("No model is available on this server.", "此服务器没有可用的模型。");
      button.disabled = true;
    }
    showLimits();
  } catch (err) {
    showError("Cannot reach the server.", "无法连接服务器。");
  }
}

function figure(caption, src, downloadName, emptyText) {
  if (!src) {
    return el("figure", { class: "empty" }, el("div", {}, emptyText), el("figcaption", {}, caption));
  }
  const img = el("img", { src, alt: caption });
  if (downloadName) img.dataset.name = downloadName;
  return el("figure", {}, img, el("figcaption", {}, caption));
}

function referenceCaption(result) {
  if (!result.reference_font) return "reference · 标准字";
  return `reference · 标准字: ${result.reference_form} · ${result.reference_font}`;
}

// For "auto": what the recogniser chose, and a field to correct it and restore this file again.
function autoBox(result) {
  const auto = result.auto;
  const pct = (p) => `${Math.round(100 * p)}%`;
  const text = auto.char
    ? `Recognised 识别: ${auto.char} (${pct(auto.confidence)})`
    : `Not recognised with confidence 未能确认` +
      (auto.candidates.length ? ` (best ${auto.candidates[0][0]} ${pct(auto.confidence)})` : "");
  const others = auto.candidates.map(([c, p]) => `${c} ${pct(p)}`).join(" · ");
  const input = el("input", {
    type: "text", class: "correct-char", maxlength: "8", lang: "zh",
    value: auto.char || "", "aria-label": "Correct character",
  });
  const again = el("button", { type: "button", class: "again" }, "Restore again · 重新修复");
  again.addEventListener("click", () => restoreAgain(result.index, input.value.trim()));
  return el(
    "div", { class: "auto" },
    el("p", {}, text, others ? el("small", {}, ` — tried: ${others}`) : ""),
    el("label", {}, "Character 字: ", input), again,
  );
}

function renderResult(result) {
  const title = el("h2", {}, result.name);
  if (result.char) title.append(el("span", { class: "char" }, result.char));
  if (!result.ok) {
    const text = result.error_zh ? `${result.error}\n${result.error_zh}` : result.error;
    const box = el("div", { class: "error-box file-error", role: "alert" }, text);
    return el("article", { class: "result failed", "data-index": result.index }, title, box);
  }
  title.append(el("span", { class: "meta" }, `${result.width}×${result.height} px`));
  const stem = result.name.replace(/\.[^.]*$/, "") || "glyph";
  const row = el(
    "div",
    { class: "row" },
    figure("damaged · 残损", result.images.input),
    figure(
      referenceCaption(result),
      result.images.reference,
      null,
      result.auto ? "no confident character · 未确认" : "no character given · 未输入字",
    ),
    figure("restored · 修复", result.images.restored, `${stem}-restored.png`),
  );
  const restoredImg = row.lastChild.querySelector("img");
  restoredImg.classList.add("restored");
  // Before / after: the button shows the input in the restored picture's place, and back.
  const compare = el(
    "button",
    { type: "button", class: "compare", "aria-pressed": "false" },
    "compare · 对比",
  );
  compare.addEventListener("click", () => {
    const showInput = compare.getAttribute("aria-pressed") !== "true";
    compare.setAttribute("aria-pressed", String(showInput));
    restoredImg.src = showInput ? result.images.input : result.images.restored;
    row.lastChild.querySelector("figcaption").textContent = showInput
      ? "input (compare) · 原图"
      : "restored · 修复";
  });
  row.lastChild.append(compare);
  const link = el(
    "a",
    { class: "download", href: result.download, download: `${stem}-restored.png` },
    "Download restored PNG · 下载修复图",
  );
  const article = el("article", { class: "result ok", "data-index": result.index }, title, row);
  if (result.auto) article.append(autoBox(result));
  if (result.note) article.append(el("p", { class: "note" }, result.note));
  article.append(link);
  return article;
}

function progressLine(job, stage) {
  const failed = job.failed ? ` · ${job.failed} failed · 失败 ${job.failed}` : "";
  return `${job.done} / ${job.total}${failed} · ${stage}`;
}

// Restore one file of the last request again with a character the user typed (or "auto").
// A file's own error replaces its card (shown there only); a request error goes to the top box.
async function restoreAgain(index, char) {
  showError("");
  const file = lastFiles[index];
  const old = resultsBox.querySelector(`[data-index="${index}"]`);
  if (!file || !old) return;
  const body = new FormData();
  body.append("files", file, file.name);
  body.append("char", char);
  body.append("model", lastModel);
  body.append("wait", "1");
  old.classList.add("busy");
  try {
    const response = await fetch("/api/restore", { method: "POST", body });
    const job = await readJson(response);
    if (!response.ok || !job.results || !job.results[0]) {
      throw new ServerError(job, response.statusText);
    }
    old.replaceWith(renderResult({ ...job.results[0], index }));
  } catch (err) {
    if (err instanceof ServerError) showError(err.message, err.zh);
    else showError("Cannot reach the server.", "无法连接服务器。");
    old.classList.remove("busy");
  }
}

function showJob(job) {
  progressBar.max = Math.max(job.total, 1);
  progressBar.value = job.done;
  progressText.textContent = progressLine(job, job.stage);
  progressText.classList.toggle("failed-count", job.failed > 0);
  job.results.forEach((result, i) => {
    if (result && !result.omitted && !resultsBox.querySelector(`[data-index="${i}"]`)) {
      resultsBox.append(renderResult(result));
    }
  });
  if (job.status === "done" && job.total - job.failed > 0) {
    downloadAll.replaceChildren(
      el("a", { href: job.zip, download: "restored.zip" }, "Download all (ZIP) · 全部下载"),
    );
    downloadAll.hidden = false;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The JSON body of a response; a server error that is not JSON becomes an Error with its text.
async function readJson(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ServerError(null, `The server answered ${response.status} ${response.statusText}.`);
  }
}

async function restore(event) {
  event.preventDefault();
  showError("");
  if (pageMode()) return restorePage();
  $("page-view").hidden = true;
  if (!chosenFiles.length) {
    showError("Choose one or more character images first.", "请先选择图像。");
    return;
  }
  if (chosenFiles.length > limits.max_files) {
    showError(
      `Too many files: at most ${limits.max_files} at a time.`,
      `文件过多：每次最多 ${limits.max_files} 个。`,
    );
    return;
  }
  const body = new FormData();
  for (const file of chosenFiles) body.append("files", file, file.name);
  body.append("char", $("char").value);
  body.append("model", $("model").value);
  lastFiles = chosenFiles.slice();
  lastModel = $("model").value;

  button.disabled = true;
  resultsBox.replaceChildren();
  downloadAll.hidden = true;
  progressPanel.hidden = false;
  progressBar.removeAttribute("value");
  progressText.textContent = "uploading · 上传中";
  try {
    let response = await fetch("/api/restore", { method: "POST", body });
    let job = await readJson(response);
    if (!response.ok && !job.id) throw new ServerError(job, response.statusText);
    showJob(job);
    while (job.status !== "done") {
      await sleep(200);
      // Results already shown are not sent again.
      const shown = resultsBox.querySelectorAll(".result").length;
      response = await fetch(`/api/jobs/${job.id}?skip=${shown}`);
      job = await readJson(response);
      if (!response.ok) throw new ServerError(job, response.statusText);
      showJob(job);
    }
    progressText.textContent = progressLine(job, "done · 完成");
  } catch (err) {
    if (err instanceof ServerError) showError(err.message, err.zh);
    else showError("Cannot reach the server.", "无法连接服务器。");
    progressPanel.hidden = true;
  } finally {
    button.disabled = false;
  }
}

// --------------------------------------------------------------------------- page mode
// Upload one page → POST /api/page → boxes over the page, one editable character per box →
// "Restore again" → POST /api/page/{id} with the corrected boxes and characters.
const pageView = $("page-view");
const pageCanvas = $("page-canvas");
const pageChars = $("page-chars");
let pageState = null; // {id, width, height, characters: [{box, char, column, confidence, source}]}

function pageMode() {
  return $("mode-page").checked;
}

// The upload limits, worded for the chosen mode (single characters or one page).
function showLimits() {
  if (!limits.formats) return;  // not loaded from the server yet
  const side = limits.max_image_side;
  const size = `${megabytes(limits.max_upload_bytes)}`;
  $("limits").textContent = pageMode()
    ? `One page (a rubbing, an inscription, a manuscript sheet) per upload; ` +
      `${limits.formats.join(", ")}; up to ${size} and ${side}×${side} pixels. ` +
      `每次一页（拓片、碑刻或写本），不超过 ${size}、${side}×${side} 像素。`
    : `One character per picture; ${limits.formats.join(", ")}; up to ` +
      `${size} and ${side}×${side} pixels each, ${limits.max_files} pictures at a time. ` +
      `每张图一个字；每个不超过 ${size}、${side}×${side} 像素，每次最多 ${limits.max_files} 张。`;
}

function setMode() {
  showLimits();
  const page = pageMode();
  for (const node of document.querySelectorAll(".page-only")) node.hidden = !page;
  for (const node of document.querySelectorAll(".chars-only")) node.hidden = page;
  fileInput.multiple = !page;
}

function selectBox(index) {
  for (const node of document.querySelectorAll(".page-box.selected, .page-chars li.selected")) {
    node.classList.remove("selected");
  }
  const box = pageCanvas.querySelector(`.page-box[data-index="${index}"]`);
  const item = pageChars.querySelector(`li[data-index="${index}"]`);
  if (box) box.classList.add("selected");
  if (item) {
    item.classList.add("selected");
    item.querySelector("input").focus();
  }
}

function renderPage(page) {
  pageState = {
    id: page.id,
    width: page.width,
    height: page.height,
    characters: page.characters.map((c) => ({ ...c })),
  };
  pageView.hidden = false;
  $("page-title").textContent = `${page.name} · ${page.width}×${page.height} px`;
  const found = page.characters.length;
  let status = `${found} characters found (${page.layout}) · restored in ${page.seconds} s`;
  if (page.alignment && !page.alignment.matched_in_order) {
    status += ` · the transcription has ${page.alignment.text_chars} characters`;
  }
  $("page-status").textContent = status;
  $("page-image").src = page.images.input;
  $("page-restored").src = page.images.restored;
  const png = $("page-download-png");
  png.href = page.download.image;
  png.setAttribute("download", page.download.image_name);
  const json = $("page-download-json");
  json.href = page.download.json;
  json.setAttribute("download", page.download.json_name);
  drawBoxes();
}

function drawBoxes() {
  for (const node of pageCanvas.querySelectorAll(".page-box")) node.remove();
  pageChars.replaceChildren();
  const { width, height } = pageState;
  pageState.characters.forEach((c, i) => {
    if (c.deleted) return;
    const [x0, y0, x1, y1] = c.box;
    const box = el("div", { class: "page-box", "data-index": i, title: `#${i + 1}` });
    box.style.left = `${(100 * x0) / width}%`;
    box.style.top = `${(100 * y0) / height}%`;
    box.style.width = `${(100 * (x1 - x0)) / width}%`;
    box.style.height = `${(100 * (y1 - y0)) / height}%`;
    const label = el("span", { class: "label" }, c.char || "?");
    box.append(label);
    box.addEventListener("click", () => selectBox(i));
    pageCanvas.append(box);

    const input = el("input", {
      class: "page-char",
      type: "text",
      maxlength: "2",
      lang: "zh",
      value: c.char || "",
      "aria-label": `character ${i + 1}`,
    });
    input.addEventListener("input", () => {
      c.char = input.value.trim() || null;
      c.edited = true;
      label.textContent = c.char || "?";
    });
    input.addEventListener("focus", () => selectBox(i));
    const how = c.source === "ocr" ? `${Math.round(100 * (c.confidence || 0))}%` : c.source;
    const del = el("button", { class: "delete", type: "button", title: "delete this box" }, "×");
    del.addEventListener("click", () => {
      c.deleted = true;
      drawBoxes();
    });
    pageChars.append(el("li", { "data-index": i }, `${i + 1}`, input, el("small", {}, how), del));
  });
}

async function postPage(url, options) {
  button.disabled = true;
  $("page-again").disabled = true;
  progressPanel.hidden = false;
  progressBar.removeAttribute("value");
  progressText.textContent = "finding, reading and restoring the characters · 识别与修复中";
  try {
    const response = await fetch(url, options);
    const page = await readJson(response);
    if (!response.ok) throw new Error(page.detail || response.statusText);
    renderPage(page);
    progressText.textContent = "done · 完成";
    progressBar.max = 1;
    progressBar.value = 1;
  } catch (err) {
    showError(String(err.message || err));
    progressPanel.hidden = true;
  } finally {
    button.disabled = false;
    $("page-again").disabled = false;
  }
}

async function restorePage() {
  if (chosenFiles.length !== 1) {
    showError("Choose one page image. 请选择一张整页图像。");
    return;
  }
  resultsBox.replaceChildren();
  const body = new FormData();
  body.append("file", chosenFiles[0], chosenFiles[0].name);
  body.append("layout", $("layout").value);
  body.append("text", $("page-text").value);
  body.append("model", $("model").value);
  await postPage("/api/page", { method: "POST", body });
}

async function restorePageAgain() {
  if (!pageState) return;
  showError("");
  const characters = pageState.characters
    .filter((c) => !c.deleted)
    .map((c) => ({
      box: c.box,
      column: c.column,
      // Characters the user typed or confirmed are sent; unread ones are recognised again.
      char: c.char || null,
    }));
  await postPage(`/api/page/${pageState.id}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ characters }),
  });
}

$("page-again").addEventListener("click", restorePageAgain);
for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", setMode);
}
setMode();

fileInput.addEventListener("change", () => setFiles(fileInput.files));
dropZone.addEventListener("click", (e) => {
  if (e.target === dropZone || e.target.tagName === "P") fileInput.click();
});
dropZone.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fileInput.click(); }
});
for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (e) => { e.preventDefault(); dropZone.classList.add("dragging"); });
}
for (const name of ["dragleave", "drop"]) {
  dropZone.addEventListener(name, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer && e.dataTransfer.files.length) setFiles(e.dataTransfer.files);
});
form.addEventListener("submit", restore);
loadModels();
loadSamples();
