// Vary (Region): draw rectangles or a freehand lasso over the image; on submit the drawing goes as a
// black/white PNG (white = the region) at the image's own size. No build step, no dependencies.
"use strict";

(() => {
  const form = document.getElementById("region-form");
  const image = document.getElementById("region-image");
  const canvas = document.getElementById("region-canvas");
  const field = document.getElementById("region-mask");
  const hint = document.getElementById("region-hint");
  if (!form || !image || !canvas) return;
  const shapes = []; // each: {kind: "rect", x, y, w, h} or {kind: "lasso", points: [[x, y], ...]}, in image pixels
  let current = null;

  const tool = () => form.querySelector("input[name=tool]:checked").value;
  const scale = () => image.naturalWidth / image.clientWidth;

  function fit() {
    canvas.width = image.clientWidth;
    canvas.height = image.clientHeight;
    draw();
  }

  function trace(ctx, shape, k) {
    ctx.beginPath();
    if (shape.kind === "rect") {
      ctx.rect(shape.x / k, shape.y / k, shape.w / k, shape.h / k);
    } else {
      shape.points.forEach(([x, y], i) => (i ? ctx.lineTo(x / k, y / k) : ctx.moveTo(x / k, y / k)));
      ctx.closePath();
    }
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    const k = scale() || 1;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "rgba(255, 64, 64, 0.35)";
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.lineWidth = 2;
    for (const shape of current ? [...shapes, current] : shapes) {
      trace(ctx, shape, k);
      ctx.fill();
      ctx.stroke();
    }
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    const k = scale();
    const x = Math.max(0, Math.min(canvas.width, event.clientX - box.left)) * k;
    const y = Math.max(0, Math.min(canvas.height, event.clientY - box.top)) * k;
    return [x, y];
  }

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    current = tool() === "rect" ? { kind: "rect", x0: x, y0: y, x, y, w: 0, h: 0 } : { kind: "lasso", points: [[x, y]] };
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!current) return;
    const [x, y] = point(event);
    if (current.kind === "rect") {
      Object.assign(current, { x: Math.min(x, current.x0), y: Math.min(y, current.y0),
                               w: Math.abs(x - current.x0), h: Math.abs(y - current.y0) });
    } else {
      current.points.push([x, y]);
    }
    draw();
  });
  const finish = () => {
    if (!current) return;
    const big = current.kind === "rect" ? current.w > 2 && current.h > 2 : current.points.length > 2;
    if (big) shapes.push(current);
    current = null;
    draw();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  document.getElementById("region-undo").addEventListener("click", () => { shapes.pop(); draw(); });
  document.getElementById("region-clear").addEventListener("click", () => { shapes.length = 0; draw(); });

  form.addEventListener("submit", (event) => {
    if (!shapes.length) {
      event.preventDefault();
      hint.textContent = hint.dataset.empty;
      return;
    }
    const mask = document.createElement("canvas");
    mask.width = image.naturalWidth;
    mask.height = image.naturalHeight;
    const ctx = mask.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, mask.width, mask.height);
    ctx.fillStyle = "#fff";
    for (const shape of shapes) { trace(ctx, shape, 1); ctx.fill(); }
    field.value = mask.toDataURL("image/png");
    document.getElementById("region-submit").disabled = true;
  });

  if (image.complete && image.naturalWidth) fit();
  image.addEventListener("load", fit);
  window.addEventListener("resize", fit);
})();
