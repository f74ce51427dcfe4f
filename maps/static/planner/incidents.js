/* The incident map: grids as a choropleth of the filtered incidents, clustered markers. */
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
  const incidents = L.markerClusterGroup({ maxClusterRadius: 40 }).addTo(map);
  const overdueLayer = L.featureGroup().addTo(map);
  GG.control().addOverlay(gridLayer, T.grids);
  GG.control().addOverlay(incidents, T.incidents);
  GG.control().addOverlay(overdueLayer, T.overdue_layer);
  let grids = [];

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
    const markers = features.map((f) => {
      const p = f.properties;
      counts[p.grid_code] = (counts[p.grid_code] || 0) + 1;
      if (p.overdue) late[p.grid_code] = (late[p.grid_code] || 0) + 1;
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
    grids = await api.all('/grids', { town: cfg.town.code });
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
