/* The planner's map: grids by load, edited through the service (dry run first, If-Match). */
(function () {
  'use strict';
  const GG = window.GG;
  const api = window.GisGridApi;
  const cfg = GG.cfg;
  const T = GG.L;
  const map = GG.map();
  const band = cfg.band;
  const by = cfg.by;

  const state = {
    grids: new Map(),      // code -> {feature, layer}
    mode: null,            // 'edit' | 'split' | 'merge' | 'draw' | null
    picked: [],            // codes clicked in the current mode
    pending: null,         // {method, path, body, ifMatch, at}
    proposal: null,        // {village, data}
  };
  const gridLayer = L.featureGroup().addTo(map);
  const pane = GG.gridPane();
  const previewLayer = L.featureGroup().addTo(map);
  const proposalLayer = L.featureGroup().addTo(map);
  const households = L.markerClusterGroup({ chunkedLoading: true, disableClusteringAtZoom: 17,
                                            maxClusterRadius: 50 });
  GG.control().addOverlay(gridLayer, T.grids);
  GG.control().addOverlay(households, T.households);
  GG.control().addOverlay(proposalLayer, T.proposal);
  state.layers = { grids: gridLayer, households, preview: previewLayer, proposal: proposalLayer };
  window.GisGridPlanner = state;  // for tests and the curious

  const load = (p) => (by === 'people' ? p.people : p.households) || 0;
  const etag = (f) => `"${f.id}"`;
  const unit = by === 'people' ? T.by_people : T.by_households;

  function gridStyle(feature) {
    const p = feature.properties;
    return { color: p.member ? '#333' : '#7a0177', weight: 1.2, dashArray: p.member ? null : '4 3',
             fillColor: GG.loadColour(load(p), band), fillOpacity: 0.55 };
  }

  function tooltip(p) {
    return `<b>${GG.esc(p.code)}</b> ${GG.esc(p.name || '')}<br>` +
      `${GG.esc(T.village)}: ${GG.esc(p.village)}<br>` +
      `${GG.esc(T.member)}: ${GG.esc(p.member || T.no_member)}<br>` +
      `${GG.esc(T.households_n)}: ${p.households}　${GG.esc(T.people_n)}: ${p.people}<br>` +
      `${GG.esc(T.load)}: ${load(p)} ${GG.esc(unit)} (${GG.esc(T.band)} ${band[0]}–${band[1]})`;
  }

  // ---- panel ---------------------------------------------------------------------------
  const swatches = [['#2166ac', `< ${Math.round(band[0] * 0.75)}`], ['#92c5de', T.below],
    ['#41ab5d', `${T.within} ${band[0]}–${band[1]}`], ['#f4a582', T.above],
    ['#b2182b', `> ${Math.round(band[1] * 1.25)}`]]
    .map(([c, t]) => `<span class="gg-swatch" style="background:${c}"></span>${GG.esc(t)}`).join(' ');
  const villageOptions = cfg.villages
    .map((v) => `<option value="${GG.esc(v.code)}">${GG.esc(v.name)}</option>`).join('');
  const panel = GG.panel('gg-planner', 'topleft', `
    <h4>${GG.esc(cfg.town.name)} · ${GG.esc(T.title)}</h4>
    <div>${GG.esc(T.load)} (${GG.esc(unit)}): ${swatches}</div>
    <div id="gg-login">${GG.esc(T.user)}: <input id="gg-username" size="10" autocomplete="username">
      ${GG.esc(T.password)}: <input id="gg-password" type="password" size="10"
      autocomplete="current-password"> <button id="gg-login-btn">${GG.esc(T.login)}</button></div>
    <div id="gg-whoami"></div>
    <div id="gg-tools">
      <button data-mode="edit">${GG.esc(T.edit)}</button>
      <button data-mode="split">${GG.esc(T.split)}</button>
      <button data-mode="merge">${GG.esc(T.merge)}</button>
      <button data-mode="draw">${GG.esc(T.draw)}</button>
    </div>
    <div id="gg-propose-row">${GG.esc(T.village_pick)}: <select id="gg-village">${villageOptions}</select>
      <button id="gg-propose">${GG.esc(T.propose)}</button></div>
    <div id="gg-msg" class="gg-msg"></div>
    <div id="gg-result"></div>
    <div id="gg-save-row"><button id="gg-save" disabled>${GG.esc(T.save)}</button>
      <button id="gg-cancel">${GG.esc(T.cancel)}</button></div>`);
  const $ = (sel) => panel.querySelector(sel);
  function whoami() {
    const user = api.user();
    $('#gg-login').style.display = user ? 'none' : '';
    $('#gg-whoami').textContent = user ? `${T.logged_in}: ${user}` : '';
  }
  $('#gg-login-btn').addEventListener('click', async () => {
    const r = await api.login($('#gg-username').value.trim(), $('#gg-password').value);
    if (!r.ok) { message(`${T.login}: ${GG.errorText(r.data)}`, true); return; }
    $('#gg-password').value = '';
    message('');
    whoami();
  });
  whoami();

  function message(text, error) {
    $('#gg-msg').innerHTML = GG.esc(text);
    $('#gg-msg').className = error ? 'gg-msg gg-err' : 'gg-msg';
  }

  // A role that cannot edit grids (a member, an analyst): the map, without the tools.
  if (cfg.editable === false) {
    ['#gg-tools', '#gg-propose-row', '#gg-save-row'].forEach((sel) => { $(sel).hidden = true; });
    message(T.read_only);
  }

  // ---- loading -------------------------------------------------------------------------
  async function loadGrids() {
    const features = await GG.gridFeatures();
    gridLayer.clearLayers();
    state.grids.clear();
    features.forEach((feature) => {
      const layer = L.geoJSON(feature, { style: gridStyle, pane }).getLayers()[0];
      layer.feature = feature;
      layer.bindTooltip(tooltip(feature.properties), { sticky: true });
      layer.on('click', () => onGridClick(feature.properties.code));
      gridLayer.addLayer(layer);
      state.grids.set(feature.properties.code, { feature, layer });
    });
    document.body.dataset.gridsLoaded = String(features.length);
  }

  async function loadHouseholds() {
    const features = await api.all('/layers/households', { town: cfg.town.code });
    const markers = features.map((f) => {
      const [lon, lat] = f.geometry.coordinates;
      return L.circleMarker([lat, lon], { radius: 3, color: '#31a354', weight: 1,
                                          fillColor: '#74c476', fillOpacity: 0.8 })
        .bindTooltip(`${GG.esc(f.properties.grid_code)} · ${f.properties.people} ${GG.esc(T.people_n)}`);
    });
    households.addLayers(markers);
    document.body.dataset.householdsLoaded = String(features.length);
  }

  // ---- modes ---------------------------------------------------------------------------
  function setMode(mode) {
    reset();
    state.mode = mode;
    panel.querySelectorAll('button[data-mode]').forEach((b) => {
      b.classList.toggle('gg-on', b.dataset.mode === mode);
    });
    if (mode === 'merge') message(T.pick_two);
    else if (mode === 'edit' || mode === 'split') message(T.pick_grid);
    else if (mode === 'draw') {
      message(T.draw_polygon);
      map.pm.enableDraw('Polygon', { snappable: true, snapDistance: 12 });
    }
  }
  panel.querySelectorAll('button[data-mode]').forEach((b) => {
    b.addEventListener('click', () => setMode(state.mode === b.dataset.mode ? null : b.dataset.mode));
  });

  function reset() {
    state.pending = null;
    state.picked = [];
    previewLayer.clearLayers();
    GG.clearProblems();
    $('#gg-result').innerHTML = '';
    $('#gg-save').disabled = true;
    message('');
    map.pm.disableDraw();
    state.grids.forEach(({ layer }) => {
      if (layer.pm && layer.pm.enabled()) layer.pm.disable();
      layer.setStyle(gridStyle(layer.feature));
    });
  }

  function highlight(code) {
    const g = state.grids.get(code);
    if (g) g.layer.setStyle({ weight: 4, color: '#08519c' });
  }

  function onGridClick(code) {
    const g = state.grids.get(code);
    if (!g) return;
    $('#gg-village').value = g.feature.properties.village_code;
    if (state.mode === 'edit' && !state.picked.length) {
      state.picked = [code];
      highlight(code);
      // The service validates the outline and says where it fails: no client-side veto.
      g.layer.pm.enable({ snappable: true, snapDistance: 12, allowSelfIntersection: true });
      g.layer.on('pm:edit', () => {
        state.pending = { method: 'PUT', path: `/grids/${code}`,
                          body: g.layer.toGeoJSON().geometry, ifMatch: etag(g.feature),
                          at: GG.centre(g.layer) };
        dryRun();
      });
      message(`${code}: ${T.edit}`);
    } else if (state.mode === 'split' && !state.picked.length) {
      state.picked = [code];
      highlight(code);
      message(T.draw_line);
      map.pm.enableDraw('Line', { snappable: false });
    } else if (state.mode === 'merge' && state.picked.length < 2 && !state.picked.includes(code)) {
      state.picked.push(code);
      highlight(code);
      if (state.picked.length === 2) {
        const [a, b] = state.picked.map((c) => state.grids.get(c));
        state.pending = { method: 'POST', path: `/grids/${state.picked[0]}/merge`,
                          body: { other: state.picked[1] },
                          ifMatch: `${etag(a.feature)}, ${etag(b.feature)}`,
                          at: GG.centre(a.layer) };
        dryRun();
      }
    }
  }

  function containing(latlng) {
    // The grid whose polygon holds the point (ray casting over its rings).
    const x = latlng.lng; const y = latlng.lat;
    let found = null;
    state.grids.forEach(({ feature }, code) => {
      const polys = feature.geometry.type === 'Polygon' ? [feature.geometry.coordinates]
        : feature.geometry.coordinates;
      polys.forEach((rings) => {
        let inside = false;
        rings.forEach((ring) => {
          for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
            const [xi, yi] = ring[i]; const [xj, yj] = ring[j];
            if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
          }
        });
        if (inside) found = code;
      });
    });
    return found;
  }

  map.on('pm:create', (e) => {
    const drawn = e.layer;
    const geometry = drawn.toGeoJSON().geometry;
    map.removeLayer(drawn);
    map.pm.disableDraw();
    if (state.mode === 'split' && state.picked.length === 1) {
      const code = state.picked[0];
      state.pending = { method: 'POST', path: `/grids/${code}/split`,
                        body: { line: geometry }, ifMatch: etag(state.grids.get(code).feature),
                        at: drawn.getBounds().getCenter() };
      dryRun();
    } else if (state.mode === 'draw') {
      // A new grid is carved out of the grid it is drawn in: its outline cuts that grid.
      const ring = geometry.coordinates[0];
      const centre = drawn.getBounds().getCenter();
      const host = containing(centre) || containing(L.latLng(ring[0][1], ring[0][0]));
      if (!host) { message(T.pick_grid, true); return; }
      state.picked = [host];
      highlight(host);
      state.pending = { method: 'POST', path: `/grids/${host}/split`,
                        body: { line: { type: 'LineString', coordinates: ring } },
                        ifMatch: etag(state.grids.get(host).feature), at: centre };
      dryRun();
    }
  });

  // ---- dry run and save ----------------------------------------------------------------
  function changesTable(edit) {
    const rows = edit.changes.map((c) => {
      const l = by === 'people' ? c.people : c.households;
      const colour = c.change === 'retired' ? '#bbb' : GG.loadColour(l, band);
      return `<tr><td>${GG.esc(c.code)}</td><td>${GG.esc(T[c.change] || c.change)}</td>` +
        `<td>${c.households}</td><td>${c.people}</td>` +
        `<td><span class="gg-swatch" style="background:${colour}"></span>${l}</td></tr>`;
    }).join('');
    return `<table class="gg-changes"><tr><th>${GG.esc(T.code)}</th><th>${GG.esc(T.change)}</th>` +
      `<th>${GG.esc(T.households_n)}</th><th>${GG.esc(T.people_n)}</th><th>${GG.esc(T.load)}</th></tr>` +
      `${rows}</table>`;
  }

  async function send(dry) {
    const p = state.pending;
    if (!api.token()) { message(T.login_first, true); return null; }
    const r = await api.request(p.method, p.path, { body: p.body, ifMatch: p.ifMatch,
                                                     query: { dry_run: dry } });
    if (!r.ok) {
      const at = GG.showProblems(r, p.at, r.status === 412 ? T.stale : T.error);
      message(`${T.error}: HTTP ${r.status}`, true);
      document.body.dataset.lastError = String(r.status);
      if (at.length) map.panTo(at[0]);
      $('#gg-save').disabled = true;
      return null;
    }
    return r.data;
  }

  async function dryRun() {
    GG.clearProblems();
    previewLayer.clearLayers();
    message(T.loading);
    const data = await send(true);
    if (!data) return;
    const edit = data.edit;
    edit.grids.forEach((f) => {
      previewLayer.addLayer(L.geoJSON(f, { style: () => ({
        color: '#000', weight: 2.5, dashArray: '6 4',
        fillColor: GG.loadColour(load(f.properties), band), fillOpacity: 0.35 }) }));
    });
    $('#gg-result').innerHTML = `<b>${GG.esc(T.dry_run)}</b>${changesTable(edit)}`;
    message('');
    $('#gg-save').disabled = false;
    document.body.dataset.dryRun = String(edit.changes.length);
  }

  $('#gg-save').addEventListener('click', async () => {
    $('#gg-save').disabled = true;
    const data = await send(false);
    if (!data) return;
    const result = `<b>${GG.esc(T.saved)}</b>${changesTable(data.edit)}`;
    reset();
    setMode(null);
    await loadGrids();
    $('#gg-result').innerHTML = result;
    document.body.dataset.saved = data.properties.code;
  });
  $('#gg-cancel').addEventListener('click', async () => {
    setMode(null);
    proposalLayer.clearLayers();
    state.proposal = null;
    await loadGrids();
  });

  // ---- proposals -----------------------------------------------------------------------
  function devColour(dev, tol) {
    if (Math.abs(dev) <= tol) return '#41ab5d';
    return dev < 0 ? '#2166ac' : '#b2182b';
  }

  $('#gg-propose').addEventListener('click', async () => {
    const village = $('#gg-village').value;
    setMode(null);
    if (!api.token()) { message(T.login_first, true); return; }
    proposalLayer.clearLayers();
    message(T.loading);
    const target = (band[0] + band[1]) / 2;
    const tolerance = (band[1] - band[0]) / (band[1] + band[0]) || 0.05;
    const path = `/villages/${village}/plans`;
    const r = await api.request('POST', path, { body: { by, target, tolerance } });
    const outline = [...state.grids.values()].filter((g) => g.feature.properties.village_code === village);
    const at = outline.length ? GG.centre(outline[0].layer) : map.getCenter();
    if (!r.ok) { GG.showProblems(r, at, T.error); message(`${T.error}: HTTP ${r.status}`, true); return; }
    state.proposal = { village, data: r.data };
    L.geoJSON(r.data, {
      style: (f) => ({ color: '#fff', weight: 2.5, dashArray: '4 3', fillOpacity: 0.45,
                       fillColor: devColour(f.properties.deviation_pct, tolerance * 100) }),
      onEachFeature: (f, layer) => layer.bindTooltip(
        `<b>${GG.esc(f.properties.grid_code)}</b><br>${GG.esc(T.households_n)}: ${f.properties.households}` +
        ` ${GG.esc(T.people_n)}: ${f.properties.people}<br>${GG.esc(T.deviation)}: ` +
        `${f.properties.deviation_pct.toFixed(1)}%<br>${GG.esc(T.compactness)}: ${f.properties.compactness.toFixed(2)}`,
        { sticky: true }),
    }).eachLayer((l) => proposalLayer.addLayer(l));
    map.fitBounds(proposalLayer.getBounds(), { paddingTopLeft: [480, 20], paddingBottomRight: [20, 20] });
    const current = outline.map((g) => `<tr><td>${GG.esc(g.feature.properties.code)}</td>` +
      `<td>${load(g.feature.properties)}</td></tr>`).join('');
    const proposed = r.data.features.map((f) => `<tr><td>${GG.esc(f.properties.grid_code)}</td>` +
      `<td>${f.properties.load}</td><td>${f.properties.deviation_pct.toFixed(1)}%</td>` +
      `<td>${f.properties.compactness.toFixed(2)}</td></tr>`).join('');
    $('#gg-result').innerHTML = `<b>${GG.esc(T.proposal_for)}${GG.esc(village)}</b> ` +
      `(${GG.esc(T.target)} ${target.toFixed(0)} ±${(tolerance * 100).toFixed(0)}%)` +
      `<div style="display:flex;gap:8px"><table><tr><th>${GG.esc(T.code)}</th><th>${GG.esc(T.load)}</th></tr>${current}</table>` +
      `<table><tr><th>${GG.esc(T.proposal)}</th><th>${GG.esc(T.load)}</th><th>${GG.esc(T.deviation)}</th>` +
      `<th>${GG.esc(T.compactness)}</th></tr>${proposed}</table></div>` +
      `<button id="gg-accept">${GG.esc(T.accept)}</button><button id="gg-discard">${GG.esc(T.discard)}</button>`;
    message('');
    $('#gg-discard').addEventListener('click', () => {
      proposalLayer.clearLayers(); state.proposal = null; $('#gg-result').innerHTML = '';
    });
    $('#gg-accept').addEventListener('click', async () => {
      if (!api.token()) { message(T.login_first, true); return; }
      const applied = await api.request('POST', `/villages/${village}/plans/apply`,
                                        { body: { features: r.data.features } });
      if (!applied.ok) { GG.showProblems(applied, at, T.error); return; }
      proposalLayer.clearLayers();
      state.proposal = null;
      await loadGrids();
      $('#gg-result').innerHTML = `<b>${GG.esc(T.saved)}</b>`;
    });
  });

  loadGrids().then(() => {
    if (gridLayer.getLayers().length) {
      map.fitBounds(gridLayer.getBounds(), { paddingTopLeft: [360, 10], paddingBottomRight: [10, 10] });
    }
  }).catch((err) => message(String(err), true));
  // Households start switched off (layer control): clusters would hide the load colours.
  loadHouseholds().catch((err) => message(String(err), true));
})();
