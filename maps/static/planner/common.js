/* Helpers shared by the planner and incident pages: the map, panels, colours, problems. */
(function () {
  'use strict';
  const cfg = window.GIS_GRID_PAGE;
  window.GisGridApi.base = cfg.api;

  const GG = {
    cfg,
    L: cfg.labels,
    // folium declares its map with `var` but its layer control with `let`: a global
    // lexical binding, not a property of window, so look both up by name in global scope.
    map() { return window[cfg.map] || GG.global(cfg.map); },
    control() { return window[cfg.layerControl] || GG.global(cfg.layerControl); },
    global(name) {
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new Error(`bad name ${name}`);
      return new Function(`return typeof ${name} === 'undefined' ? undefined : ${name};`)();
    },

    esc(value) {
      return String(value === null || value === undefined ? '' : value)
        .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;',
                                       "'": '&#39;' }[c]));
    },

    /* A panel (Leaflet control) holding `html`; returns its element. */
    panel(id, position, html) {
      const Panel = L.Control.extend({
        onAdd() {
          const div = L.DomUtil.create('div', 'gg-panel leaflet-bar');
          div.id = id;
          div.innerHTML = html;
          L.DomEvent.disableClickPropagation(div);
          L.DomEvent.disableScrollPropagation(div);
          return div;
        },
      });
      new Panel({ position }).addTo(GG.map());
      return document.getElementById(id);
    },

    /* A pane under the overlay pane: filled grids stay below the folium lines and outlines. */
    gridPane() {
      const map = GG.map();
      if (!map.getPane('gg-grids')) map.createPane('gg-grids').style.zIndex = 350;
      return 'gg-grids';
    },

    /* The grids the page shows: every grid of the town, or only the member's (cfg.grids,
     * fetched one by one so no other grid reaches the page). */
    async gridFeatures() {
      const api = window.GisGridApi;
      if (!Array.isArray(cfg.grids)) return api.all('/grids', { town: cfg.town.code });
      const features = [];
      for (const code of cfg.grids.filter((c) => c.startsWith(cfg.town.code))) {
        const r = await api.request('GET', `/grids/${encodeURIComponent(code)}`);
        if (!r.ok) throw new Error(`/grids/${code}: HTTP ${r.status} ${GG.errorText(r.data)}`);
        features.push(r.data);
      }
      return features;
    },

    /* A pane above the overlays for vector-tile points (clickable: see planner.css). */
    tilePane() {
      const map = GG.map();
      if (!map.getPane('gg-tiles')) map.createPane('gg-tiles').style.zIndex = 450;
      return 'gg-tiles';
    },

    /* Colour of a load against the band [low, high]. */
    loadColour(load, band) {
      const [low, high] = band;
      if (load < low) return load < low * 0.75 ? '#2166ac' : '#92c5de';
      if (load > high) return load > high * 1.25 ? '#b2182b' : '#f4a582';
      return '#41ab5d';
    },

    /* Representative lat/lng of a GeoJSON geometry's layer (its bounds' centre). */
    centre(layer) { return layer.getBounds().getCenter(); },

    problemsLayer: null,

    clearProblems() {
      if (GG.problemsLayer) GG.problemsLayer.clearLayers();
    },

    /* Text of an error answer: GridError {detail, problems} or FastAPI's validation list. */
    errorText(data) {
      if (!data) return '';
      if (typeof data.detail === 'string') return data.detail;
      if (Array.isArray(data.detail)) {
        return data.detail.map((d) => `${(d.loc || []).join('.')}: ${d.msg}`).join('; ');
      }
      return JSON.stringify(data);
    },

    /* Draw an error answer on the map: at each problem's lon/lat, else at `fallback`. */
    showProblems(result, fallback, title) {
      const map = GG.map();
      if (!GG.problemsLayer) GG.problemsLayer = L.layerGroup().addTo(map);
      GG.clearProblems();
      const text = `<b>${GG.esc(title)} (HTTP ${result.status})</b><br>${GG.esc(GG.errorText(result.data))}`;
      const problems = (result.data && Array.isArray(result.data.problems)) ? result.data.problems : [];
      const located = problems.filter((p) => Number.isFinite(p.lon) && Number.isFinite(p.lat));
      const places = located.length ? located.map((p) => L.latLng(p.lat, p.lon))
        : [fallback || map.getCenter()];
      places.forEach((latlng, i) => {
        const marker = L.circleMarker(latlng, { radius: 10, color: '#b2182b', weight: 3,
                                                fillColor: '#fddbc7', fillOpacity: 0.9,
                                                className: 'gg-problem' });
        marker.bindTooltip(text, { permanent: i === 0, direction: 'top',
                                   className: 'gg-problem-tip' });
        GG.problemsLayer.addLayer(marker);
      });
      return places;
    },
  };
  // Marker clusters need a maximum zoom; the offline "no basemap" layer gives none.
  if (GG.map().getMaxZoom() === Infinity) GG.map().setMaxZoom(19);
  window.GG = GG;
})();
