// The unscene3d viewer: one scene's points at a time, coloured by the chosen layer. Data come from the
// page's JSON blocks (see unscene3d/viewer/page.py for their layout); THREE is the vendored three.js bundle.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("viewer-config").textContent);
  const sceneBlocks = Array.from(document.querySelectorAll("script.scene-data"));
  const ui = {
    scene: document.getElementById("scene"),
    note: document.getElementById("scene-note"),
    layers: document.getElementById("layers"),
    pointSize: document.getElementById("point-size"),
    units: document.getElementById("units"),
    legendTitle: document.getElementById("legend-title"),
    legend: document.getElementById("legend"),
    picked: document.getElementById("picked"),
    error: document.getElementById("error"),
    canvas: document.getElementById("view"),
  };
  const DIM = 0.22; // brightness of the points outside a highlighted instance

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
  }

  function decodeBase64(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // Colours are shown as stored (sRGB bytes, as in the PLY files): no colour-space conversion anywhere.
  THREE.ColorManagement.enabled = false;
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ canvas: ui.canvas, antialias: true });
  } catch (error) {
    showError("This page needs WebGL, which this browser does not offer: " + error.message);
    return;
  }
  renderer.outputColorSpace = THREE.LinearSRGBColorSpace;
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  const world = new THREE.Scene();
  world.background = new THREE.Color(0x1e1f22);
  const camera = new THREE.PerspectiveCamera(50, 1, 0.01, 1000);
  camera.up.set(0, 0, 1); // scans are z-up
  const controls = new THREE.OrbitControls(camera, ui.canvas);
  controls.screenSpacePanning = true;
  const raycaster = new THREE.Raycaster();

  let current = null; // the scene shown: { data, points, geometry, colors, layers (decoded lazily), layer }
  let pinned = null; // the highlighted instance, kept until cleared
  let hovered = null; // the instance under the pointer in the legend
  let renderQueued = false;

  function render() {
    renderQueued = false;
    renderer.render(world, camera);
    if (window.viewerFirstRenderMs === undefined) {
      window.viewerFirstRenderMs = performance.now();
      document.body.dataset.rendered = "1";
    }
  }

  function requestRender() {
    if (!renderQueued) {
      renderQueued = true;
      requestAnimationFrame(render);
    }
  }

  function resize() {
    const width = ui.canvas.clientWidth, height = ui.canvas.clientHeight;
    if (width === 0 || height === 0) return;
    renderer.setSize(width, height, false);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    requestRender();
  }

  function decodeLayer(layer) {
    if (layer.decoded) return layer.decoded;
    if (layer.rgb !== undefined) {
      layer.decoded = { rgb: decodeBase64(layer.rgb) };
    } else {
      const bytes = decodeBase64(layer.labels);
      const labels = layer.labelBytes === 2 ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer);
      layer.decoded = { labels: labels, palette: decodeBase64(layer.palette) };
    }
    return layer.decoded;
  }

  function highlightLabel() {
    return hovered !== null ? hovered : pinned;
  }

  function paint() {
    const layer = current.data.layers[current.layer];
    const decoded = decodeLayer(layer);
    const colors = current.colors;
    const count = colors.length / 3;
    const none = config.unlabeled;
    const focus = highlightLabel();
    if (decoded.rgb) {
      colors.set(decoded.rgb);
    } else {
      const labels = decoded.labels, palette = decoded.palette;
      for (let i = 0; i < count; i++) {
        const label = labels[i] - 1; // stored shifted: 0 = no label
        const j = 3 * i;
        if (label < 0) {
          colors[j] = none[0]; colors[j + 1] = none[1]; colors[j + 2] = none[2];
        } else {
          colors[j] = palette[3 * label]; colors[j + 1] = palette[3 * label + 1]; colors[j + 2] = palette[3 * label + 2];
        }
        if (focus !== null && label !== focus) {
          colors[j] *= DIM; colors[j + 1] *= DIM; colors[j + 2] *= DIM;
        }
      }
    }
    current.geometry.getAttribute("color").needsUpdate = true;
    requestRender();
  }

  function colourOf(layer, label) {
    const palette = decodeLayer(layer).palette;
    return "rgb(" + palette[3 * label] + "," + palette[3 * label + 1] + "," + palette[3 * label + 2] + ")";
  }

  function describe(layer, label) {
    const entry = (layer.legend || []).find((item) => item[0] === label);
    return "#" + label + (entry ? " · " + entry[1] : "");
  }

  function updatePicked() {
    const layer = current.data.layers[current.layer];
    const focus = highlightLabel();
    ui.picked.textContent = focus === null ? "" : layer.name + ": " + describe(layer, focus);
    for (const item of ui.legend.children) {
      item.classList.toggle("active", Number(item.dataset.label) === focus);
    }
  }

  function setHighlight(kind, label) {
    if (kind === "hover") hovered = label;
    else pinned = label;
    updatePicked();
    paint();
  }

  function buildLegend() {
    const layer = current.data.layers[current.layer];
    ui.legend.replaceChildren();
    const entries = layer.legend || [];
    ui.legendTitle.textContent = entries.length ? layer.name + ": " + entries.length + " instances" : "";
    for (const [label, text, muted] of entries) {
      const item = document.createElement("li");
      item.dataset.label = label;
      if (muted) item.classList.add("muted");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colourOf(layer, label);
      const words = document.createElement("span");
      words.textContent = "#" + label + " · " + text;
      item.append(swatch, words);
      item.addEventListener("mouseenter", () => setHighlight("hover", label));
      item.addEventListener("mouseleave", () => setHighlight("hover", null));
      item.addEventListener("click", () => setHighlight("pin", pinned === label ? null : label));
      ui.legend.append(item);
    }
  }

  function selectLayer(index, chosen = true) {
    if (!current || index < 0 || index >= current.data.layers.length) return;
    current.layer = index;
    if (chosen) rememberLayer(current.data.layers[index].name);
    pinned = null;
    hovered = null;
    const radio = ui.layers.querySelectorAll("input")[index];
    if (radio) radio.checked = true;
    buildLegend();
    updatePicked();
    paint();
  }

  function buildLayerList() {
    ui.layers.querySelectorAll("label").forEach((label) => label.remove());
    current.data.layers.forEach((layer, index) => {
      const label = document.createElement("label");
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "layer";
      radio.value = String(index);
      radio.addEventListener("change", () => selectLayer(index));
      const name = document.createElement("span");
      name.textContent = (index < 9 ? index + 1 + ". " : "") + layer.name;
      const summary = document.createElement("span");
      summary.className = "summary";
      summary.textContent = layer.summary;
      label.append(radio, " ", name, summary);
      ui.layers.append(label);
    });
  }

  function pointSize() {
    return current.data.pointSize * Math.pow(2, Number(ui.pointSize.value));
  }

  function resetView() {
    const sphere = current.geometry.boundingSphere;
    const radius = Math.max(sphere.radius, 1e-3);
    const distance = radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2));
    const direction = new THREE.Vector3(0.4, -0.55, 1.0).normalize();
    camera.near = distance / 1000;
    camera.far = distance * 10;
    camera.position.copy(sphere.center).addScaledVector(direction, distance);
    camera.updateProjectionMatrix();
    controls.target.copy(sphere.center);
    controls.update();
    requestRender();
  }

  // The layer the URL asks for (#layer=NAME), lower case; "" when it names none.
  function layerInAddress() {
    const match = /(?:^#|&)layer=([^&]*)/.exec(window.location.hash);
    if (!match) return "";
    try {
      return decodeURIComponent(match[1].replace(/\+/g, " ")).toLowerCase();
    } catch (error) {
      return match[1].toLowerCase();
    }
  }

  // The layer a scene opens on: the one the URL names, else the page's own choice (view --layer), where the
  // scene has it (matched against each layer's keys: its name and the ends of it, lower case; layer_keys in
  // viewer/layers.py); else the scene's last prediction set.
  function firstLayer(layers) {
    for (const asked of [layerInAddress(), config.layer ? config.layer.toLowerCase() : ""]) {
      const named = asked ? layers.findIndex((layer) => (layer.keys || []).includes(asked)) : -1;
      if (named >= 0) return named;
    }
    let last = 0;
    layers.forEach((layer, index) => { if (layer.kind === "prediction") last = index; });
    return last;
  }

  function rememberLayer(name) {
    // The URL names the layer shown, so a reload, a bookmark or the next scene opens on it.
    try {
      window.history.replaceState(null, "", "#layer=" + encodeURIComponent(name));
    } catch (error) {
      // Some browsers refuse to change a file:// URL; the page works the same without it.
    }
  }

  function loadScene(index) {
    const data = JSON.parse(sceneBlocks[index].textContent);
    const quantised = new Uint16Array(decodeBase64(data.positions).buffer);
    const count = quantised.length / 3;
    const positions = new Float32Array(3 * count);
    for (let i = 0; i < 3 * count; i++) positions[i] = data.origin[i % 3] + quantised[i] * data.extent[i % 3];
    const colors = new Uint8Array(3 * count);
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(positions, 3));
    geometry.setAttribute("color", new THREE.BufferAttribute(colors, 3, true));
    geometry.computeBoundingSphere();
    const material = new THREE.PointsMaterial({ vertexColors: true, sizeAttenuation: true, size: data.pointSize });
    const points = new THREE.Points(geometry, material);
    if (current) {
      world.remove(current.points);
      current.geometry.dispose();
      current.points.material.dispose();
    }
    world.add(points);
    current = { data: data, points: points, geometry: geometry, colors: colors, layer: 0 };
    ui.note.textContent = data.note + " · " + data.source;
    material.size = pointSize();
    buildLayerList();
    resetView();
    selectLayer(firstLayer(data.layers), false);
  }

  function pick(event) {
    const rect = ui.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(
      ((event.clientX - rect.left) / rect.width) * 2 - 1,
      -((event.clientY - rect.top) / rect.height) * 2 + 1
    );
    raycaster.setFromCamera(ndc, camera);
    raycaster.params.Points.threshold = pointSize() / 2;
    const hit = raycaster.intersectObject(current.points)[0];
    const decoded = decodeLayer(current.data.layers[current.layer]);
    if (!hit || !decoded.labels) return setHighlight("pin", null);
    const label = decoded.labels[hit.index] - 1;
    setHighlight("pin", label < 0 || label === pinned ? null : label);
    const item = ui.legend.querySelector('li[data-label="' + label + '"]');
    if (item) item.scrollIntoView({ block: "nearest" });
  }

  let pressed = null;
  ui.canvas.addEventListener("pointerdown", (event) => { pressed = [event.clientX, event.clientY]; });
  ui.canvas.addEventListener("pointerup", (event) => {
    // A click, not the end of a drag: pick the instance under the pointer.
    if (pressed && Math.hypot(event.clientX - pressed[0], event.clientY - pressed[1]) < 4 && event.button === 0) {
      pick(event);
    }
    pressed = null;
  });
  controls.addEventListener("change", requestRender);
  ui.pointSize.addEventListener("input", () => {
    current.points.material.size = pointSize();
    requestRender();
  });
  ui.scene.addEventListener("change", () => loadScene(Number(ui.scene.value)));
  window.addEventListener("hashchange", () => selectLayer(firstLayer(current.data.layers), false));
  window.addEventListener("keydown", (event) => {
    // Keys are for the page except while typing (this page has no text fields) or choosing in a list.
    const typing = event.target instanceof HTMLInputElement && !["radio", "range"].includes(event.target.type);
    if (typing || event.target instanceof HTMLSelectElement) return;
    if (event.key >= "1" && event.key <= "9") selectLayer(Number(event.key) - 1);
    else if (event.key === "r" || event.key === "R") resetView();
    else if (event.key === "Escape") setHighlight("pin", null);
  });
  new ResizeObserver(resize).observe(ui.canvas);

  ui.units.textContent = config.units;
  sceneBlocks.forEach((block, index) => {
    const option = document.createElement("option");
    option.value = String(index);
    option.textContent = block.dataset.name;
    ui.scene.append(option);
  });
  ui.scene.disabled = sceneBlocks.length < 2;
  resize();
  loadScene(0);
})();
