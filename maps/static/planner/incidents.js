/* The incident map: grids as a choropleth of the filtered incidents; points from vector tiles.
 *
 * The choropleth, the summary and the overdue rings follow the filters through the API
 * (GET /incidents). Incidents, pollution points and hazards are drawn from the service's
 * vector tiles (cfg.tiles: /tiles/{layer}/{z}/{x}/{y}.pbf, fetched with the user's login):
 * from zoom 13 one point per feature (incidents coloured by workflow step, only those the
 * filters match), below it the service's aggregated cells sized by their count. A click on a
 * point opens a popup with the tile's attributes. Without cfg.tiles, incidents are clustered
 * markers from the API.
 */
(function () {
  'use strict';
  const GG = window.GG;
  const api = window.GisGridApi;
  const cfg = GG.cfg;
  const T = GG.L;
  const map = GG.map();
  const STATUS_COLOURS = { reported: '#6a51a3', accepted: '#807dba', dispatched: '#3182bd',
    handled: '#31a354', feedback: '#fd8d3c', closed: '#969696', evaluated: '#525252' };
  const SCALE = ['#ffffcc', '#fed976', '#feb24c', '#fd8d3c', '#f03b20', '#bd0026'];

  const gridLayer = L.featureGroup().addTo(map);
  const pane = GG.gridPane();
  const tiled = new Set((cfg.tiles && cfg.tiles.layers) || []);
  const incidents = L.markerClusterGroup({ maxClusterRadius: 40 });
  const overdueLayer = L.featureGroup().addTo(map);
  GG.control().addOverlay(gridLayer, T.grids);
  if (!tiled.has('incidents')) {
    incidents.addTo(map);
    GG.control().addOverlay(incidents, T.incidents);
  }
  GG.control().addOverlay(overdueLayer, T.overdue_layer);
  let grids = [];

  // ---- vector tiles --------------------------------------------------------------------
  // Incident codes the filters match (null: no filter, every incident and cell is shown).
  let matching = null;
  const POINTS = {
    incidents: { colour: '#333', fill: (p) => STATUS_COLOURS[p.status] || '#999' },
    pollution: { colour: '#a50f15', fill: () => '#ef3b2c' },
    hazards: { colour: '#b35806', fill: () => '#fdb863' },
  };
  const POPUP_FIELDS = [['code', T.code], ['name', T.name], ['kind', T.kind],
    ['level', T.level], ['task_type_code', T.type], ['status', T.status],
    ['reported_at', T.reported_at], ['village_code', T.village], ['grid_code', T.grid],
    ['count', T.cell_count]];
  function tileStyle(name) {
    const spec = POINTS[name];
    return (p) => {
      if (p.count !== undefined) {  // an aggregated cell (below zoom 13): no attributes
        if (name === 'incidents' && matching) return [];
        return { radius: Math.min(16, 3 + 2 * Math.sqrt(p.count)), weight: 1,
                 color: spec.colour, fill: true, fillColor: spec.fill(p), fillOpacity: 0.45 };
      }
      if (name === 'incidents' && matching && !matching.has(p.code)) return [];
      return { radius: name === 'incidents' ? 5 : 6, weight: 1, color: spec.colour,
               fill: true, fillColor: spec.fill(p), fillOpacity: 0.9 };
    };
  }
  function popup(name, p) {
    const rows = POPUP_FIELDS.filter(([key]) => p[key] !== undefined && p[key] !== '')
      .map(([key, label]) => {
        const value = key === 'status' ? (T[`s_${p[key]}`] || p[key]) : p[key];
        return `<tr><td>${GG.esc(label)}</td><td>${GG.esc(value)}</td></tr>`;
      }).join('');
    return `<b>${GG.esc(T[name])}</b><table class="gg-popup">${rows}</table>`;
  }
  // Leaflet.VectorGrid 1.3.0 predates Leaflet 1.8, whose map events read a small point
  // layer's own lat/lng (a tile's point symbolizer has none: "reading 'lat'"). Without
  // getLatLng, Leaflet places the event at the mouse, which is what a popup needs.
  function patchSymbolizers(layer) {
    Object.values(layer._vectorTiles || {}).forEach((tile) => {
      Object.values(tile._layers || {}).forEach((symbolizer) => {
        const proto = Object.getPrototypeOf(symbolizer);
        if (proto !== L.CircleMarker.prototype && proto.getLatLng) proto.getLatLng = undefined;
      });
    });
  }
  const tileLayers = {};
  if (cfg.tiles) {
    const [w, s, e, n] = cfg.tiles.bounds;
    const tilePane = GG.tilePane();
    ['hazards', 'pollution', 'incidents'].filter((name) => tiled.has(name)).forEach((name) => {
      const layer = L.vectorGrid.protobuf(cfg.tiles.url.replace('{layer}', name), {
        pane: tilePane,
        className: 'gg-tiles',
        interactive: true,
        // Keeps each tile's renderer (patchSymbolizers) and unhooks its points from the
        // map's event targets when the tile goes (a cell has no code: "cell").
        getFeatureId: (f) => (f.properties && f.properties.code) || 'cell',
        // Only tiles over the town are asked for; the service answers 204 for empty ones.
        bounds: L.latLngBounds([s, w], [n, e]).pad(0.05),
        maxNativeZoom: 18,
        vectorTileLayerStyles: { [name]: tileStyle(name) },
        fetchOptions: { credentials: 'same-origin', headers: api.authHeaders() },
      });
      layer.on('load tileload', () => patchSymbolizers(layer));
      layer.on('click', (ev) => {
        L.popup({ maxWidth: 320 }).setLatLng(ev.latlng)
          .setContent(popup(name, ev.layer.properties || {})).openOn(map);
        document.body.dataset.popup = name;
      });
      layer.addTo(map);
      GG.control().addOverlay(layer, T[name]);
      tileLayers[name] = layer;
    });
    window.GisGridTiles = tileLayers;  // for tests and the curious
  }

  const statusBoxes = cfg.statuses.map((s) => `<label style="margin-right:4px"><input type="checkbox"` +
    ` name="status" value="${s}"${(cfg.filters.status || []).includes(s) ? ' checked' : ''}>` +
    `${GG.esc(T[`s_${s}`])}</label>`).join('');
  const panel = GG.panel('gg-incidents', 'topleft', `
    <h4>${GG.esc(cfg.town.name)} · ${GG.esc(T.title)}</h4>
    <div>${GG.esc(T.type)}: <select id="gg-type"><option value="">${GG.esc(T.all)}</option></select></div>
    <div>${GG.esc(T.status)}: ${statusBoxes}</div>
    <div>${GG.esc(T.from)}: <input id="gg-from" type="date" value="${GG.esc(cfg.filters.from || '')}">
      ${GG.esc(T.to)}: <input id="gg-to" type="date" value="${GG.esc(cfg.filters.to || '')}"></div>
    <div><label><input id="gg-overdue" type="checkbox"${cfg.filters.overdue ? ' checked' : ''}>
      ${GG.esc(T.overdue)}</label> <button id="gg-apply">${GG.esc(T.apply)}</button></div>
    <div id="gg-summary" class="gg-msg"></div><div id="gg-legend"></div>`);
  const $ = (sel) => panel.querySelector(sel);

  function filters() {
    return {
      town: cfg.town.code,
      type: $('#gg-type').value || null,
      status: [...panel.querySelectorAll('input[name=status]:checked')].map((b) => b.value),
      from: $('#gg-from').value || null,
      to: $('#gg-to').value || null,
      overdue: $('#gg-overdue').checked ? 'true' : null,
    };
  }

  function breaks(max) {
    // Class limits 0 | 1.. | up to max, in five steps.
    const step = Math.max(1, Math.ceil(max / 5));
    return [0, 1, 1 + step, 1 + 2 * step, 1 + 3 * step, 1 + 4 * step];
  }
  function colour(n, limits) {
    let k = 0;
    limits.forEach((limit, i) => { if (n >= limit) k = i; });
    return SCALE[k];
  }

  async function refresh() {
    $('#gg-summary').textContent = '…';
    let features;
    try {
      features = await api.all('/incidents', filters());
    } catch (err) {
      $('#gg-summary').textContent = String(err);
      $('#gg-summary').className = 'gg-msg gg-err';
      return;
    }
    const counts = {}; const late = {};
    incidents.clearLayers();
    overdueLayer.clearLayers();
    const f0 = filters();
    const filtered = Boolean(f0.type || f0.status.length || f0.from || f0.to || f0.overdue);
    matching = filtered ? new Set(features.map((f) => f.properties.code)) : null;
    if (tileLayers.incidents) tileLayers.incidents.redraw();
    features.forEach((f) => {
      const p = f.properties;
      counts[p.grid_code] = (counts[p.grid_code] || 0) + 1;
      if (p.overdue) late[p.grid_code] = (late[p.grid_code] || 0) + 1;
    });
    const markers = tiled.has('incidents') ? [] : features.map((f) => {
      const p = f.properties;
      const [lon, lat] = f.geometry.coordinates;
      const tip = `<b>${GG.esc(p.code)}</b> ${GG.esc(p.task_type)}<br>${GG.esc(T.status)}: ` +
        `${GG.esc(T[`s_${p.status}`] || p.status)}${p.overdue ? ` · <b style="color:#b2182b">${GG.esc(T.overdue_n)}</b>` : ''}` +
        `<br>${GG.esc(T.reported_at)}: ${GG.esc((p.reported_at || '').slice(0, 16))}` +
        `<br>${GG.esc(T.deadline)}: ${GG.esc((p.deadline || '').slice(0, 16))}<br>${GG.esc(T.grid)}: ${GG.esc(p.grid_code)}`;
      const marker = L.circleMarker([lat, lon], {
        radius: p.overdue ? 7 : 5, weight: p.overdue ? 3 : 1,
        color: p.overdue ? '#e31a1c' : '#333', fillColor: STATUS_COLOURS[p.status] || '#999',
        fillOpacity: 0.9 }).bindTooltip(tip);
      if (p.overdue) {
        overdueLayer.addLayer(L.circleMarker([lat, lon], { radius: 11, weight: 2.5, color: '#e31a1c',
          fill: false, interactive: false, className: 'gg-overdue' }));
      }
      return marker;
    });
    if (tiled.has('incidents')) {
      features.filter((f) => f.properties.overdue).forEach((f) => {
        const [lon, lat] = f.geometry.coordinates;
        overdueLayer.addLayer(L.circleMarker([lat, lon], { radius: 11, weight: 2.5,
          color: '#e31a1c', fill: false, interactive: false, className: 'gg-overdue' }));
      });
    }
    incidents.addLayers(markers);
    const max = Math.max(0, ...Object.values(counts));
    const limits = breaks(max);
    gridLayer.eachLayer((layer) => {
      const p = layer.feature.properties;
      const n = counts[p.code] || 0; const o = late[p.code] || 0;
      layer.setStyle({ fillColor: colour(n, limits), fillOpacity: 0.75,
                       color: o ? '#e31a1c' : '#555', weight: o ? 3 : 1 });
      layer.setTooltipContent(`<b>${GG.esc(p.code)}</b> ${GG.esc(p.village)}<br>${GG.esc(T.count)}: ${n}` +
        (o ? ` (${GG.esc(T.overdue_n)} ${o})` : ''));
      layer.feature.properties.incident_count = n;
    });
    const overdue = features.filter((f) => f.properties.overdue).length;
    $('#gg-summary').className = 'gg-msg';
    $('#gg-summary').textContent = `${T.matched}: ${features.length} (${T.overdue_n} ${overdue})`;
    $('#gg-legend').innerHTML = `${GG.esc(T.count)}: ` + limits.map((l, i) => {
      const hi = i + 1 < limits.length ? limits[i + 1] - 1 : null;
      const label = i === 0 ? '0' : (hi === null ? `≥${l}` : (hi > l ? `${l}–${hi}` : `${l}`));
      return `<span class="gg-swatch" style="background:${SCALE[i]}"></span>${label}`;
    }).join(' ') + `<br><span class="gg-swatch" style="border:2px solid #e31a1c"></span>${GG.esc(T.overdue_n)}`;
    document.body.dataset.incidents = String(features.length);
    document.body.dataset.choropleth = JSON.stringify(counts);
  }

  async function init() {
    const types = await api.request('GET', '/task-types', { query: { limit: 1000 } });
    if (types.ok) {
      $('#gg-type').insertAdjacentHTML('beforeend', types.data.data.map((t) =>
        `<option value="${GG.esc(t.code)}">${GG.esc(t.code)} ${GG.esc(t.name)}</option>`).join(''));
      if (cfg.filters.type) $('#gg-type').value = cfg.filters.type;
    }
    grids = await GG.gridFeatures();
    grids.forEach((f) => {
      const layer = L.geoJSON(f, { pane }).getLayers()[0];
      layer.feature = f;
      layer.bindTooltip('', { sticky: true });
      gridLayer.addLayer(layer);
    });
    gridLayer.bringToBack();
    await refresh();
  }
  $('#gg-apply').addEventListener('click', refresh);
  init().catch((err) => { $('#gg-summary').textContent = String(err); });
})();
